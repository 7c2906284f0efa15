package pushnotify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// SendTest sends one push of each kind as a real call would get it and
// returns the request as sent and APNs's answer.
func TestSendTest(t *testing.T) {
	a := testenv.StartAPNs(t)
	app := tokenApp(t, bundle)
	h := startReal(t, a, Config{Apps: []App{app}})
	for _, c := range []struct {
		kind               Kind
		pushType, topic    string
		priority, expEmpty string
	}{
		{KindVoIP, "voip", bundle + ".voip", "10", ""},
		{KindAlert, "alert", bundle, "10", ""},
		{KindBackground, "background", bundle, "5", ""},
	} {
		t.Run(string(c.kind), func(t *testing.T) {
			a.Reset()
			r, err := h.s.SendTest(context.Background(), TestPush{Kind: c.kind, Token: tokOK, Account: "bob@example.com", Caller: "alice@example.com", Ring: 45 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Sent || r.Status != http.StatusOK || r.Err != nil || r.Latency <= 0 {
				t.Errorf("result %+v", r)
			}
			reqs := a.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			got := reqs[0]
			if r.APNsID != got.Header.Get("apns-id") || r.Header.Get("apns-id") != r.APNsID {
				t.Errorf("apns-id: answer %q, sent %q, received %q", r.APNsID, r.Header.Get("apns-id"), got.Header.Get("apns-id"))
			}
			for k, v := range map[string]string{"apns-push-type": c.pushType, "apns-topic": c.topic, "apns-priority": c.priority} {
				if r.Header.Get(k) != v || got.Header.Get(k) != v {
					t.Errorf("%s: shown %q, sent %q, want %q", k, r.Header.Get(k), got.Header.Get(k), v)
				}
			}
			if r.Header.Get("authorization") != got.Header.Get("authorization") {
				t.Error("the JWT shown is not the one sent")
			}
			verifyJWT(t, got.Header.Get("authorization"), &app.AuthKey.PublicKey)
			if string(r.Body) != string(got.Body) || !strings.HasSuffix(r.URL, "/3/device/"+tokOK) {
				t.Errorf("shown %s %s, sent %s", r.URL, r.Body, got.Body)
			}
			var body pushBody
			if err := json.Unmarshal(got.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Account != "bob@example.com" || body.Call.Caller != "alice@example.com" || body.Call.UUID == "" || body.Call.ExpiresAt-body.Call.SentAt != 45000 {
				t.Errorf("body %s", got.Body)
			}
		})
	}
	wantCount(t, h.s.m.pushes, 0, "voip", "success") // outside the queue and its counters
}

type pushBody struct {
	Account string `json:"account"`
	Call    struct {
		UUID      string `json:"uuid"`
		Caller    string `json:"caller"`
		SentAt    int64  `json:"sent_at"`
		ExpiresAt int64  `json:"expires_at"`
	} `json:"call"`
}

// APNs's refusal is the result, not retried and not acted on: a dead
// token is not removed, a 500 is not tried again.
func TestSendTestRefused(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := startReal(t, a, Config{})
	a.Script(tokGone, testenv.Response{Status: http.StatusGone, Reason: "Unregistered", Timestamp: 1_700_000_000_000})
	a.Script(tokDown, testenv.Response{Status: http.StatusInternalServerError, Reason: "InternalServerError"})
	r, err := h.s.SendTest(context.Background(), TestPush{Kind: KindVoIP, Token: tokGone, Ring: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 410 || r.Reason != "Unregistered" || r.Timestamp.UnixMilli() != 1_700_000_000_000 {
		t.Errorf("result %+v", r)
	}
	r, err = h.s.SendTest(context.Background(), TestPush{Kind: KindVoIP, Token: tokDown, Ring: time.Minute})
	if err != nil || r.Status != 500 {
		t.Errorf("result %+v, %v", r, err)
	}
	if n := len(a.Requests()); n != 2 {
		t.Errorf("%d requests, want 2: no retry", n)
	}
	if got := h.removed.list(); len(got) != 0 {
		t.Errorf("removed %q", got)
	}
}

// A dry run builds the request and sends nothing; bad input is refused
// before anything is built.
func TestSendTestDryRun(t *testing.T) {
	h := start(t, newMemAPNs(), Config{DryRun: true, Apps: []App{tokenApp(t, bundle)}})
	r, err := h.s.SendTest(context.Background(), TestPush{Kind: KindVoIP, Token: tokOK, Environment: Sandbox, Ring: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent || r.Status != 0 || r.Header.Get("apns-push-type") != "voip" || !strings.HasPrefix(r.URL, "https://api.sandbox.push.apple.com/3/device/") {
		t.Errorf("result %+v", r)
	}
	if !strings.HasPrefix(r.Header.Get("authorization"), "bearer ") {
		t.Error("a dry run with a key shows no JWT")
	}
	for name, p := range map[string]TestPush{
		"unknown app": {Kind: KindVoIP, Token: tokOK, BundleID: "com.example.nope"},
		"bad token":   {Kind: KindVoIP, Token: "not-hex"},
		"bad kind":    {Kind: "silent", Token: tokOK},
	} {
		if _, err := h.s.SendTest(context.Background(), p); err == nil {
			t.Errorf("%s: no error", name)
		} else if !errors.Is(err, ErrUnknownApp) && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
