package pushnotify

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// What a Notification may leave out, Push fills in.
func TestPushCompletesNotifications(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		sandboxApp := &App{BundleID: bundle, Environment: Sandbox}

		n := complete(Notification{Kind: KindVoIP, Deadline: now.Add(45 * time.Second)}, sandboxApp, 10*time.Minute)
		if n.Environment != Sandbox {
			t.Errorf("environment %q, want the app's", n.Environment)
		}
		if !n.Expiration.Equal(now.Add(45 * time.Second)) {
			t.Errorf("VoIP expiration %v, want its deadline", n.Expiration.Sub(now))
		}
		if _, err := uuid.Parse(n.ID); err != nil {
			t.Errorf("apns-id %q", n.ID)
		}
		if again := complete(n, sandboxApp, time.Minute); again.ID != n.ID {
			t.Error("apns-id changed")
		}

		n = complete(Notification{Kind: KindAlert, Environment: "development"}, sandboxApp, 10*time.Minute)
		if n.Environment != Production || !n.Deadline.Equal(now.Add(10*time.Minute)) || !n.Expiration.IsZero() {
			t.Errorf("alert %+v", n)
		}
		n = complete(Notification{Kind: KindAlert, Expiration: now.Add(time.Minute)}, sandboxApp, 10*time.Minute)
		if !n.Deadline.Equal(now.Add(time.Minute)) {
			t.Errorf("deadline %v, want at most the expiration", n.Deadline.Sub(now))
		}
	})
}

// With dry_run, pushes are logged with their headers and body, not sent.
func TestDryRun(t *testing.T) {
	f := newMemAPNs()
	h := start(t, f, Config{DryRun: true, Apps: []App{{BundleID: bundle}}})
	h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
	h.settle(t)
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests in a dry run", n)
	}
	wantCount(t, h.s.m.pushes, 1, "voip", "dry_run")
	logs := h.logs.String()
	for _, want := range []string{"push (dry run)", "apns_topic=com.example.chat.voip", "apns_push_type=voip", `payload="{\"aps\":{}`} {
		if !strings.Contains(logs, want) {
			t.Errorf("dry-run log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, tokOK) {
		t.Error("a log holds a whole token")
	}
}

// The metrics follow Prometheus's naming rules.
func TestMetricsLint(t *testing.T) {
	ca := newTestCA(t)
	der, key := ca.issue(t, "com.example.cert", time.Now().Add(time.Hour))
	app, err := LoadApp(AppFiles{BundleID: "com.example.cert", CertificateFile: writePEM(t, der, key)})
	must(t, err)
	f := newMemAPNs()
	f.script(tokGone, memAnswer{status: 410, reason: "Unregistered"})
	f.script(tokBusy, memAnswer{status: 429, reason: "TooManyRequests"}, memAnswer{})
	f.script(tokDown, memAnswer{status: 400, reason: "TopicDisallowed"})
	h := start(t, f, Config{Apps: []App{tokenApp(t, bundle), app}, RetryMin: time.Millisecond})
	for _, tok := range []string{tokOK, tokGone, tokBusy, tokDown} {
		h.push(t, voipPush(tok, time.Now().Add(time.Minute)))
	}
	h.settle(t)

	mfs, err := h.reg.Gather()
	must(t, err)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"jinglepush_apns_pushes_total", "jinglepush_apns_request_duration_seconds", "jinglepush_apns_retries_total",
		"jinglepush_apns_tokens_removed_total", "jinglepush_apns_app_unhealthy", "jinglepush_apns_queue_length",
		"jinglepush_apns_retry_queue_length", "jinglepush_apns_inflight_requests", "jinglepush_apns_certificate_expiry_timestamp_seconds",
	} {
		if !names[want] {
			t.Errorf("no %s", want)
		}
	}
}

// Dry-run logs leave out what a message said and who sent it, unless
// asked; call pushes are logged whole.
func TestDryRunLogsNoBodies(t *testing.T) {
	for _, bodies := range []bool{false, true} {
		h := start(t, nil, Config{DryRun: true, LogBodies: bodies})
		h.push(t, Notification{Kind: KindAlert, Token: "aa", BundleID: "com.example.chat",
			Payload: MessagePayload("bob@example.com", "alice@example.com", "meet at noon", "New message")})
		testenv.Eventually(t, waitLong, func() bool { return strings.Contains(h.logs.String(), "push (dry run)") }, "the dry run's log")
		logs := h.logs.String()
		if leaked := strings.Contains(logs, "meet at noon") || strings.Contains(logs, "alice@example.com"); leaked != bodies {
			t.Errorf("log_bodies %v: the message's text or sender logged: %v\n%s", bodies, leaked, logs)
		}
	}
}
