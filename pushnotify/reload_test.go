package pushnotify

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/sessions"
)

// A rotated signing key: the next push carries a JWT signed with the new
// key and naming its key id, over a new connection; the metrics name the
// new key.
func TestReloadRotatesKey(t *testing.T) {
	a := testenv.StartAPNs(t)
	old := tokenApp(t, bundle)
	h := startReal(t, a, Config{Apps: []App{old}})
	h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
	h.settle(t)

	rotated := tokenApp(t, bundle)
	rotated.KeyID = "NEWKEY7890"
	must(t, h.s.Reload([]App{rotated}, Alerts{}))
	h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
	h.settle(t)

	reqs := a.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	verifyJWT(t, reqs[0].Header.Get("authorization"), &old.AuthKey.PublicKey)
	hdr, _ := verifyJWT(t, reqs[1].Header.Get("authorization"), &rotated.AuthKey.PublicKey)
	if hdr["kid"] != "NEWKEY7890" {
		t.Errorf("JWT kid %v after the rotation", hdr["kid"])
	}
	if v := testutil.ToFloat64(h.s.m.credentials.WithLabelValues(bundle, "token", "NEWKEY7890", "")); v != 1 {
		t.Errorf("credentials_info of the new key = %v", v)
	}
	if n := testutil.CollectAndCount(h.s.m.credentials); n != 1 {
		t.Errorf("%d credentials_info series, want 1 (the old key's is gone)", n)
	}
	if !strings.Contains(h.logs.String(), "APNs credentials reloaded") {
		t.Errorf("the reload is not logged:\n%s", h.logs)
	}
}

// Reloading the same key keeps the client: its connection and its JWT
// (a new JWT this early would earn TooManyProviderTokenUpdates).
func TestReloadSameKeyKeepsClient(t *testing.T) {
	app := tokenApp(t, bundle)
	f := newMemAPNs()
	h := start(t, f, Config{Apps: []App{app}})
	before := h.s.client(clientKey{bundle, Production})
	must(t, h.s.Reload([]App{app}, Alerts{}))
	if after := h.s.client(clientKey{bundle, Production}); after != before {
		t.Error("an unchanged key got a new client")
	}
	if strings.Contains(h.logs.String(), "APNs credentials reloaded") {
		t.Error("nothing changed, yet a reload was logged")
	}
}

// A reload that cannot be taken changes nothing: pushes keep the running
// key.
func TestReloadRefused(t *testing.T) {
	app := tokenApp(t, bundle)
	f := newMemAPNs()
	other := tokenApp(t, "com.example.other")
	other.KeyID = "OTHERKEY12"
	h := start(t, f, Config{Apps: []App{app, other}})
	twoKeys := []App{tokenApp(t, bundle), tokenApp(t, "com.example.other")} // one key id, two keys
	for name, apps := range map[string][]App{
		"unknown app":    {tokenApp(t, "com.example.new")},
		"no credentials": {{BundleID: bundle}},
		"two keys":       twoKeys,
	} {
		if err := h.s.Reload(apps, Alerts{}); err == nil {
			t.Errorf("%s: Reload succeeded", name)
		}
	}
	h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
	h.settle(t)
	r := f.want(t, tokOK, 1)[0]
	verifyJWT(t, r.header.Get("authorization"), &app.AuthKey.PublicKey)
}

// New alert texts apply to the next push.
func TestReloadAlerts(t *testing.T) {
	h := start(t, newMemAPNs(), Config{})
	must(t, h.s.Reload(nil, Alerts{Missed: "Verpasst: %s"}))
	n, _ := h.s.endNotification(sessions.CallEnd{Call: decisionCall(), Device: testDevice(), State: sessions.EndMissed})
	if !strings.Contains(string(n.Payload), `"body":"Verpasst: alice@example.com"`) {
		t.Errorf("missed-call alert %s", n.Payload)
	}
	w := h.s.wakeNotification(sessions.Wake{Call: decisionCall(), Device: sessions.Device{ID: "d", Token: tAlert, BundleID: bundle}, Kind: sessions.WakeAlert})
	if !strings.Contains(string(w.Payload), "Incoming call from alice@example.com") {
		t.Errorf("an empty text does not fall back to the default: %s", w.Payload)
	}
}

// An app refused for its credentials is healthy again once new ones are
// loaded, before APNs has said anything of them.
func TestReloadClearsFault(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := startReal(t, a, Config{})
	h.answerOnce(t, a, tokBusy, http.StatusForbidden, "InvalidProviderToken")
	if h.s.Healthy() == nil {
		t.Fatal("healthy after InvalidProviderToken")
	}
	must(t, h.s.Reload([]App{tokenApp(t, bundle)}, Alerts{}))
	if err := h.s.Healthy(); err != nil {
		t.Errorf("Healthy after a reload = %v", err)
	}
	if v := testutil.ToFloat64(h.s.m.unhealthy.WithLabelValues(bundle, Production, bundle+".voip")); v != 0 {
		t.Errorf("app_unhealthy = %v", v)
	}
}

// A renewed certificate: APNs sees the new one, and the expiry gauge
// moves; switching to token auth removes the gauge.
func TestReloadCertificate(t *testing.T) {
	ca := newTestCA(t)
	a := testenv.StartAPNs(t, testenv.RequireClientCert(ca.pool))
	load := func(notAfter time.Time) App {
		der, key := ca.issue(t, bundle, notAfter)
		app, err := LoadApp(AppFiles{BundleID: bundle, CertificateFile: writePEM(t, der, key)})
		must(t, err)
		return app
	}
	soon, renewed := time.Now().Add(10*24*time.Hour), time.Now().Add(365*24*time.Hour)
	h := startReal(t, a, Config{Apps: []App{load(soon)}})
	if v := gauge(t, h, "jinglepush_apns_certificate_expiry_timestamp_seconds"); int64(v) != soon.Unix() {
		t.Errorf("expiry %v, want %v", v, soon.Unix())
	}
	must(t, h.s.Reload([]App{load(renewed)}, Alerts{}))
	h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
	h.settle(t)
	if v := gauge(t, h, "jinglepush_apns_certificate_expiry_timestamp_seconds"); int64(v) != renewed.Unix() {
		t.Errorf("expiry %v after the reload, want %v", v, renewed.Unix())
	}
	reqs := a.Requests()
	if len(reqs) != 1 || reqs[0].ClientCertificate == nil || !reqs[0].ClientCertificate.NotAfter.Equal(renewed.Truncate(time.Second)) {
		t.Fatalf("requests %+v: not with the renewed certificate", reqs)
	}
	must(t, h.s.Reload([]App{tokenApp(t, bundle)}, Alerts{}))
	if n := testutil.CollectAndCount(h.s.m.certExpiry); n != 0 {
		t.Errorf("%d expiry series with token auth", n)
	}
}
