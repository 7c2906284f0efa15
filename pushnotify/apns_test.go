package pushnotify

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// These tests send over real HTTP/2 and TLS to testenv's APNs, scripted per
// token: one test per answer APNs can give.

const waitLong = 10 * time.Second

// startReal builds a Sender that talks to a.
func startReal(t *testing.T, a *testenv.APNs, cfg Config) *harness {
	t.Helper()
	cfg.Endpoint, cfg.RootCAs = a.URL, a.CertPool()
	return start(t, nil, cfg)
}

// settle waits until every push accepted so far has ended.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, waitLong, func() bool {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		return h.s.pending == 0
	}, "the push to end")
}

func requestsFor(a *testenv.APNs, token string) []testenv.Request {
	var out []testenv.Request
	for _, r := range a.Requests() {
		if r.Token == token {
			out = append(out, r)
		}
	}
	return out
}

// verifyJWT checks an ES256 bearer token against key and returns its
// header and claims.
func verifyJWT(t *testing.T, authorization string, key *ecdsa.PublicKey) (hdr, claims map[string]any) {
	t.Helper()
	raw, ok := strings.CutPrefix(authorization, "bearer ")
	if !ok {
		t.Fatalf("authorization %q is not a bearer token", authorization)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("bearer is not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature: %v (%d bytes)", err, len(sig))
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key, sum[:], r, s) {
		t.Fatal("JWT signature does not verify with the app's key")
	}
	for i, out := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, claims
}

// 200: the request carries DESIGN.md's headers and body for each kind.
func TestAPNsAccepts(t *testing.T) {
	a := testenv.StartAPNs(t)
	app := tokenApp(t, bundle)
	h := startReal(t, a, Config{Apps: []App{app}})

	deadline := time.Now().Add(45 * time.Second).Truncate(time.Millisecond)
	voip := voipPush(tokOK, deadline)
	alert := voip
	alert.Kind, alert.Payload = KindAlert, CallAlertPayload("bob@example.com", Call{ID: "c1", UUID: voip.CollapseID}, EventMissed, "Missed call from alice@example.com")
	alert.Deadline, alert.Expiration = time.Time{}, time.Now().Add(24*time.Hour)
	bg := voip
	bg.Kind, bg.CollapseID, bg.Payload = KindBackground, "", BackgroundPayload("bob@example.com", Call{ID: "c1"}, EventAnsweredElsewhere)
	bg.Environment = Sandbox
	for _, n := range []Notification{voip, alert, bg} {
		h.push(t, n)
		h.settle(t)
	}

	reqs := a.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	want := []map[string]string{
		{"apns-push-type": "voip", "apns-topic": bundle + ".voip", "apns-priority": "10",
			"apns-expiration": strconv.FormatInt(deadline.Unix(), 10), "apns-collapse-id": voip.CollapseID},
		{"apns-push-type": "alert", "apns-topic": bundle, "apns-priority": "10", "apns-collapse-id": voip.CollapseID},
		{"apns-push-type": "background", "apns-topic": bundle, "apns-priority": "5", "apns-collapse-id": ""},
	}
	for i, r := range reqs {
		if r.ProtoMajor != 2 || r.Token != tokOK {
			t.Errorf("request %d: %s to token %q", i, r.Proto, r.Token)
		}
		for k, v := range want[i] {
			if got := r.Header.Get(k); got != v {
				t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
			}
		}
		if _, err := uuid.Parse(r.Header.Get("apns-id")); err != nil {
			t.Errorf("request %d: apns-id %q", i, r.Header.Get("apns-id"))
		}
		hdr, claims := verifyJWT(t, r.Header.Get("authorization"), &app.AuthKey.PublicKey)
		if hdr["alg"] != "ES256" || hdr["kid"] != app.KeyID || claims["iss"] != app.TeamID {
			t.Errorf("request %d: JWT header %v claims %v", i, hdr, claims)
		}
	}
	if string(reqs[0].Body) != string(voip.Payload) {
		t.Errorf("body %s, want %s", reqs[0].Body, voip.Payload)
	}
	for _, k := range []string{"voip", "alert", "background"} {
		wantCount(t, h.s.m.pushes, 1, k, "success")
	}
	if err := h.s.Healthy(); err != nil {
		t.Errorf("Healthy = %v", err)
	}
}

// answerOnce scripts one answer for token, pushes to it and checks that
// APNs was asked once: answers that are not retried.
func (h *harness) answerOnce(t *testing.T, a *testenv.APNs, token string, status int, reason string) {
	t.Helper()
	a.Reset()
	a.Script(token, testenv.Response{Status: status, Reason: reason})
	h.push(t, voipPush(token, time.Now().Add(45*time.Second)))
	h.settle(t)
	if n := len(requestsFor(a, token)); n != 1 {
		t.Errorf("%d requests, want 1 (no retry)", n)
	}
}

// Unregistered (410), BadDeviceToken and DeviceTokenNotForTopic: the token
// is removed at once and never retried.
func TestAPNsDeadTokens(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := startReal(t, a, Config{})
	for _, c := range []struct {
		status int
		reason string
	}{
		{http.StatusGone, "Unregistered"},
		{http.StatusBadRequest, "BadDeviceToken"},
		{http.StatusBadRequest, "DeviceTokenNotForTopic"},
	} {
		t.Run(c.reason, func(t *testing.T) {
			h.answerOnce(t, a, tokGone, c.status, c.reason)
			got := h.removed.list()
			if len(got) == 0 || got[len(got)-1] != "bob@example.com iphone "+tokGone {
				t.Errorf("removed %q", got)
			}
			wantCount(t, h.s.m.removed, 1, c.reason)
			wantCount(t, h.s.m.pushes, 1, "voip", c.reason)
		})
	}
	if err := h.s.Healthy(); err != nil {
		t.Errorf("a dead token made the app unhealthy: %v", err)
	}
	if logs := h.logs.String(); strings.Contains(logs, tokGone) {
		t.Errorf("a log holds a whole token:\n%s", logs)
	}
}

// TopicDisallowed, InvalidProviderToken, BadCertificate: operator mistakes.
// Loud, the app unhealthy, no device removed, no retry; the next push APNs
// takes makes it healthy again.
func TestAPNsOperatorErrors(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := startReal(t, a, Config{})
	for _, c := range []struct {
		status int
		reason string
	}{
		{http.StatusBadRequest, "TopicDisallowed"},
		{http.StatusForbidden, "InvalidProviderToken"},
		{http.StatusForbidden, "BadCertificate"},
	} {
		t.Run(c.reason, func(t *testing.T) {
			h.answerOnce(t, a, tokBusy, c.status, c.reason)
			if got := h.removed.list(); len(got) != 0 {
				t.Errorf("removed %q", got)
			}
			err := h.s.Healthy()
			if err == nil || !strings.Contains(err.Error(), bundle+".voip (production): "+c.reason) {
				t.Errorf("Healthy = %v, want the app and %s", err, c.reason)
			}
			if v := testutil.ToFloat64(h.s.m.unhealthy.WithLabelValues(bundle, Production, bundle+".voip")); v != 1 {
				t.Errorf("app_unhealthy = %v", v)
			}
			if !strings.Contains(h.logs.String(), "level=ERROR msg=\"APNs refused the app's credentials") {
				t.Error("not logged as an error")
			}

			h.push(t, voipPush(tokOK, time.Now().Add(45*time.Second)))
			h.settle(t)
			if err := h.s.Healthy(); err != nil {
				t.Errorf("after a push APNs took: Healthy = %v", err)
			}
			if v := testutil.ToFloat64(h.s.m.unhealthy.WithLabelValues(bundle, Production, bundle+".voip")); v != 0 {
				t.Errorf("app_unhealthy = %v after a success", v)
			}
		})
	}
}

// gauge reads a gauge with one series from h's registry.
func gauge(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// Any other 4xx: failed once, logged with its reason, the token kept.
func TestAPNsOtherClientErrors(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := startReal(t, a, Config{})
	for _, reason := range []string{"BadExpirationDate", "InvalidPushType", "PayloadTooLarge", "SomethingNew"} {
		t.Run(reason, func(t *testing.T) {
			h.answerOnce(t, a, tokBusy, http.StatusBadRequest, reason)
			label := reason
			if reason == "SomethingNew" {
				label = "http_4xx"
			}
			wantCount(t, h.s.m.pushes, 1, "voip", label)
			if !strings.Contains(h.logs.String(), "result="+label) {
				t.Errorf("the reason is not logged")
			}
		})
	}
	if got := h.removed.list(); len(got) != 0 {
		t.Errorf("removed %q", got)
	}
	if err := h.s.Healthy(); err != nil {
		t.Errorf("Healthy = %v", err)
	}
}

// 429, then 200; 500 twice, then 200: retried with one apns-id.
func TestAPNsRetries(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := startReal(t, a, Config{RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	for _, c := range []struct {
		name   string
		script []testenv.Response
		label  string
	}{
		{"429 then 200", []testenv.Response{{Status: 429, Reason: "TooManyRequests"}, {}}, "TooManyRequests"},
		{"500 twice then 200", []testenv.Response{{Status: 500, Reason: "InternalServerError"}, {Status: 500, Reason: "InternalServerError"}, {}}, "InternalServerError"},
		{"503 without reason", []testenv.Response{{Status: 503}, {}}, "http_5xx"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a.Reset()
			a.Script(tokBusy, c.script...)
			before := count(h.s.m.pushes, "voip", "success")
			h.push(t, voipPush(tokBusy, time.Now().Add(45*time.Second)))
			h.settle(t)
			reqs := requestsFor(a, tokBusy)
			if len(reqs) != len(c.script) {
				t.Fatalf("%d requests, want %d", len(reqs), len(c.script))
			}
			for _, r := range reqs {
				if id := r.Header.Get("apns-id"); id != reqs[0].Header.Get("apns-id") {
					t.Errorf("apns-id changed between attempts")
				}
			}
			wantCount(t, h.s.m.pushes, before+1, "voip", "success")
			if n := count(h.s.m.retries, "voip", c.label); n < len(c.script)-1 {
				t.Errorf("retries{%s} = %d", c.label, n)
			}
		})
	}
}

// A slow APNs: an answer later than the request timeout is retried; one
// later than the push's deadline is given up, never sent again.
func TestAPNsSlowAnswer(t *testing.T) {
	a := testenv.StartAPNs(t)
	// The request timeout leaves room for a loaded machine: only the 5 s answer may miss it.
	h := startReal(t, a, Config{Timeout: 2 * time.Second, RetryMin: 20 * time.Millisecond})

	a.Script(tokSlow, testenv.Response{Delay: 5 * time.Second}, testenv.Response{})
	h.push(t, voipPush(tokSlow, time.Now().Add(45*time.Second)))
	h.settle(t)
	if n := len(requestsFor(a, tokSlow)); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	wantCount(t, h.s.m.retries, 1, "voip", "timeout")

	a.Reset()
	a.Script(tokSlow, testenv.Response{Delay: 5 * time.Second})
	start := time.Now()
	h.push(t, voipPush(tokSlow, start.Add(200*time.Millisecond)))
	h.settle(t)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("gave up after %v", took)
	}
	// Settled: the push reached its final result, so no request can follow.
	if n := len(requestsFor(a, tokSlow)); n != 1 {
		t.Errorf("%d requests, want 1: nothing after the deadline", n)
	}
	wantCount(t, h.s.m.pushes, 1, "voip", "deadline")
}

// Network errors (here: nothing listens) are retried until the deadline,
// and the logs never hold the token, though Go's errors quote the URL.
func TestAPNsNetworkError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := start(t, nil, Config{Endpoint: "https://" + addr, RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond})

	h.push(t, voipPush(tokDown, time.Now().Add(500*time.Millisecond)))
	testenv.Eventually(t, waitLong, func() bool { return count(h.s.m.pushes, "voip", "deadline") == 1 }, "the push to end at its deadline")
	if n := count(h.s.m.retries, "voip", "network"); n < 2 {
		t.Errorf("retries{network} = %d, want several", n)
	}
	logs := h.logs.String()
	if strings.Contains(logs, tokDown) {
		t.Errorf("a log holds a whole token:\n%s", logs)
	}
	if !strings.Contains(logs, "connection refused") || !strings.Contains(logs, tokenPrefix(tokDown)) {
		t.Errorf("the error is not logged:\n%s", logs)
	}
}

// Health is kept per topic: a credential that covers <bundle>.voip but not
// <bundle> (a VoIP Services certificate) stays reported while VoIP pushes
// go through.
func TestAPNsHealthPerTopic(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := startReal(t, a, Config{})
	a.Script(tokBusy, testenv.Response{Status: http.StatusBadRequest, Reason: "TopicDisallowed"})
	alert := voipPush(tokBusy, time.Now().Add(time.Minute))
	alert.Kind = KindAlert
	h.push(t, alert)
	h.settle(t)
	h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
	h.settle(t)

	err := h.s.Healthy()
	if err == nil || err.Error() != "pushnotify: apps failing: "+bundle+" (production): TopicDisallowed" {
		t.Errorf("Healthy = %v", err)
	}
	if v := testutil.ToFloat64(h.s.m.unhealthy.WithLabelValues(bundle, Production, bundle+".voip")); v != 0 {
		t.Errorf("the VoIP topic is unhealthy")
	}
}
