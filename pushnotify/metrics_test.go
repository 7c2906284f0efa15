package pushnotify

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Per app: each APNs answer counted by result, the last success timed,
// and the credentials named.
func TestAppMetrics(t *testing.T) {
	f := newMemAPNs()
	f.script(tokGone, memAnswer{status: 410, reason: "Unregistered"})
	h := start(t, f, Config{})
	before := time.Now()
	h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
	h.push(t, voipPush(tokGone, time.Now().Add(time.Minute)))
	h.settle(t)
	wantCount(t, h.s.m.appRequests, 1, bundle, Production, "voip", "success")
	wantCount(t, h.s.m.appRequests, 1, bundle, Production, "voip", "Unregistered")
	last := testutil.ToFloat64(h.s.m.lastSuccess.WithLabelValues(bundle, "voip"))
	if last < float64(before.Unix()) || last > float64(time.Now().Unix()+1) {
		t.Errorf("last_success_timestamp_seconds = %v", last)
	}
	if n := testutil.CollectAndCount(h.s.m.lastSuccess); n != 1 {
		t.Errorf("%d last-success series, want 1 (no alert or background push went out)", n)
	}
	if v := testutil.ToFloat64(h.s.m.credentials.WithLabelValues(bundle, "token", "KEY1234567", "")); v != 1 {
		t.Errorf("credentials_info = %v", v)
	}
}
