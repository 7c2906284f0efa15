package testenv_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

const (
	tokenOK    = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728aa"
	tokenGone  = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728bb"
	tokenBusy  = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728cc"
	tokenSlow  = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728dd"
	voipTopic  = "com.example.chat.voip"
	voipSample = `{"aps":{},"account":"bob@example.com","call":{"id":"c1"}}`
)

func voip(token string) *apns2.Notification {
	return &apns2.Notification{
		DeviceToken: token,
		Topic:       voipTopic,
		PushType:    apns2.PushTypeVOIP,
		Priority:    apns2.PriorityHigh,
		CollapseID:  "3f1c6a0e-7b0e-4d55-9d1e-8f7b1c2d3e4f",
		Expiration:  time.Unix(1764000045, 0),
		Payload:     []byte(voipSample),
	}
}

func TestAPNs(t *testing.T) {
	a := testenv.StartAPNs(t)
	client := &apns2.Client{Host: a.URL, HTTPClient: a.Client()}
	ctx := context.Background()

	t.Run("200 by default", func(t *testing.T) {
		a.Reset()
		res, err := client.PushWithContext(ctx, voip(tokenOK))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Sent() || res.ApnsID == "" {
			t.Errorf("response %+v", res)
		}
		reqs := a.Wait(t, 1, 5*time.Second)
		r := reqs[0]
		if r.ProtoMajor != 2 || r.Proto != "HTTP/2.0" {
			t.Errorf("proto %s", r.Proto)
		}
		if r.Method != http.MethodPost || r.Path != "/3/device/"+tokenOK || r.Token != tokenOK {
			t.Errorf("request %s %s token %q", r.Method, r.Path, r.Token)
		}
		for h, want := range map[string]string{
			"apns-push-type":   "voip",
			"apns-topic":       voipTopic,
			"apns-priority":    "10",
			"apns-expiration":  "1764000045",
			"apns-collapse-id": "3f1c6a0e-7b0e-4d55-9d1e-8f7b1c2d3e4f",
		} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("header %s = %q, want %q", h, got, want)
			}
		}
		if string(r.Body) != voipSample {
			t.Errorf("body %s", r.Body)
		}
		if r.Answer.Status != http.StatusOK || r.Received.IsZero() {
			t.Errorf("recorded answer %+v at %v", r.Answer, r.Received)
		}
	})

	t.Run("410 Unregistered with timestamp", func(t *testing.T) {
		a.Reset()
		gone := time.UnixMilli(1763990000000)
		a.Script(tokenGone, testenv.Response{Status: http.StatusGone, Reason: apns2.ReasonUnregistered, Timestamp: gone.UnixMilli()})
		for range 2 { // the last answer repeats
			res, err := client.PushWithContext(ctx, voip(tokenGone))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusGone || res.Reason != apns2.ReasonUnregistered || !res.Timestamp.Equal(gone) {
				t.Errorf("response %+v, want 410 Unregistered at %v", res, gone)
			}
		}
		// Another token is not affected by the script.
		if res, err := client.PushWithContext(ctx, voip(tokenOK)); err != nil || !res.Sent() {
			t.Errorf("unscripted token: %+v, %v", res, err)
		}
		if n := len(a.Requests()); n != 3 {
			t.Errorf("%d requests recorded, want 3", n)
		}
	})

	t.Run("429 then 200", func(t *testing.T) {
		a.Reset()
		a.Script(tokenBusy,
			testenv.Response{Status: http.StatusTooManyRequests, Reason: apns2.ReasonTooManyRequests},
			testenv.Response{Status: http.StatusOK})
		res, err := client.PushWithContext(ctx, voip(tokenBusy))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusTooManyRequests || res.Reason != apns2.ReasonTooManyRequests {
			t.Errorf("first response %+v", res)
		}
		for range 2 {
			if res, err := client.PushWithContext(ctx, voip(tokenBusy)); err != nil || !res.Sent() {
				t.Errorf("retry: %+v, %v", res, err)
			}
		}
	})

	t.Run("slow answer", func(t *testing.T) {
		a.Reset()
		a.Script(tokenSlow, testenv.Response{Delay: 300 * time.Millisecond})
		start := time.Now()
		res, err := client.PushWithContext(ctx, voip(tokenSlow))
		if err != nil || !res.Sent() {
			t.Fatalf("%+v, %v", res, err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("answered after %v, before the delay", d)
		}

		// A sender whose deadline is shorter gives up; the request was
		// recorded on arrival all the same.
		a.Script(tokenSlow, testenv.Response{Delay: time.Minute})
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := client.PushWithContext(short, voip(tokenSlow)); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline error", err)
		}
		if n := len(a.Wait(t, 2, 5*time.Second)); n != 2 {
			t.Errorf("%d requests", n)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		a.Reset()
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if res, err := client.PushWithContext(ctx, voip(tokenOK)); err != nil || !res.Sent() {
					t.Errorf("%+v, %v", res, err)
				}
			})
		}
		if n := len(a.Wait(t, 20, 10*time.Second)); n != 20 {
			t.Errorf("%d requests", n)
		}
		wg.Wait()
	})

	t.Run("bad path", func(t *testing.T) {
		a.Reset()
		res, err := a.Client().Post(a.URL+"/3/device/", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", res.StatusCode)
		}
		res, err = a.Client().Get(a.URL + "/3/device/" + tokenOK)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d", res.StatusCode)
		}
	})
}

// TestAPNsCAFile trusts the fake through CAFile and an x/net/http2
// transport, the way the product configures apns.ca_file.
func TestAPNsCAFile(t *testing.T) {
	a := testenv.StartAPNs(t)
	pem, err := os.ReadFile(a.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CAFile holds no certificate")
	}
	client := &apns2.Client{
		Host:       a.URL,
		HTTPClient: &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
	res, err := client.Push(voip(tokenOK))
	if err != nil || !res.Sent() {
		t.Fatalf("%+v, %v", res, err)
	}
	if r := a.Wait(t, 1, 5*time.Second)[0]; r.ProtoMajor != 2 {
		t.Errorf("proto %s", r.Proto)
	}
}
