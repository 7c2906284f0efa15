package pushnotify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// These tests time retries on synctest's fake clock, with memAPNs in place
// of the network. Inside a bubble time only moves when every goroutine
// waits, so "the second attempt came 1.2 s after the first" is exact.

// within fails t unless d is in [lo, hi].
func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Errorf("%s = %v, want %v to %v", what, d, lo, hi)
	}
}

// sameID fails t unless every request carries one apns-id.
func sameID(t *testing.T, reqs []memRequest) {
	t.Helper()
	id := reqs[0].header.Get("apns-id")
	if len(id) != 36 {
		t.Fatalf("apns-id %q is not a UUID", id)
	}
	for i, r := range reqs {
		if got := r.header.Get("apns-id"); got != id {
			t.Errorf("attempt %d: apns-id %q, want %q as on the first", i+1, got, id)
		}
	}
}

// sendOne runs one VoIP push for a call ringing ring long to a token that
// APNs answers with script, and lets an hour of fake time pass. It returns
// when the push was made.
func sendOne(t *testing.T, cfg Config, ring time.Duration, script ...memAnswer) (*harness, *memAPNs, time.Time) {
	t.Helper()
	f := newMemAPNs()
	f.script(tokBusy, script...)
	h := start(t, f, cfg)
	t0 := time.Now()
	h.push(t, voipPush(tokBusy, t0.Add(ring)))
	time.Sleep(time.Hour)
	return h, f, t0
}

// 429, then 200: the second attempt comes after RetryMin, give or take
// the jitter.
func TestRetry429Then200(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, f, _ := sendOne(t, Config{RetryMin: time.Second, RetryMax: 8 * time.Second}, 45*time.Second,
			memAnswer{status: 429, reason: "TooManyRequests"}, memAnswer{})

		reqs := f.want(t, "", 2)
		// RetryMin with ±50% jitter.
		within(t, "wait before the second attempt", reqs[1].at.Sub(reqs[0].at), 500*time.Millisecond, 1500*time.Millisecond)
		sameID(t, reqs)
		wantCount(t, h.s.m.pushes, 1, "voip", "success")
		wantCount(t, h.s.m.retries, 1, "voip", "TooManyRequests")
	})
}

// 500 and 503, then 200: the backoff doubles; every attempt has one apns-id.
func TestRetry5xxTwiceThen200(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, f, _ := sendOne(t, Config{RetryMin: time.Second, RetryMax: 8 * time.Second}, 45*time.Second,
			memAnswer{status: 500, reason: "InternalServerError"},
			memAnswer{status: 503, reason: "ServiceUnavailable"},
			memAnswer{})

		reqs := f.want(t, "", 3)
		within(t, "first backoff", reqs[1].at.Sub(reqs[0].at), 500*time.Millisecond, 1500*time.Millisecond)
		within(t, "second backoff", reqs[2].at.Sub(reqs[1].at), time.Second, 3*time.Second) // doubled
		sameID(t, reqs)
		wantCount(t, h.s.m.pushes, 1, "voip", "success")
	})
}

// APNs keeps failing: attempts stop at the push's deadline, none starts
// after it and none may run past it.
func TestRetriesStopAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, f, t0 := sendOne(t, Config{RetryMin: 500 * time.Millisecond, RetryMax: 2 * time.Second}, 10*time.Second,
			memAnswer{status: 503, reason: "ServiceUnavailable"})
		deadline := t0.Add(10 * time.Second)

		reqs := f.requests()
		if len(reqs) < 4 {
			t.Fatalf("%d attempts in 10 s, want a few", len(reqs))
		}
		for i, r := range reqs {
			if !r.at.Before(deadline) {
				t.Errorf("attempt %d at %v, at or after the deadline %v", i+1, r.at, deadline)
			}
			if r.deadline.IsZero() || r.deadline.After(deadline) {
				t.Errorf("attempt %d: request context deadline %v, want at most the push's %v", i+1, r.deadline, deadline)
			}
		}
		wantCount(t, h.s.m.pushes, 1, "voip", "deadline")
		wantCount(t, h.s.m.retries, len(reqs)-1, "voip", "ServiceUnavailable")
		if !strings.Contains(h.logs.String(), "push given up") {
			t.Error("giving up is not logged")
		}
	})
}

// A retry is made only while the push is wanted (its call still rings):
// the first attempt never asks, each retry does, and an unwanted push ends
// unsent as "not_wanted".
func TestRetryOnlyWhileWanted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		f.script(tokBusy, memAnswer{status: 503, reason: "ServiceUnavailable"}, memAnswer{status: 503, reason: "ServiceUnavailable"}, memAnswer{})
		h := start(t, f, Config{RetryMin: time.Second, RetryMax: 2 * time.Second})
		var asked atomic.Int32
		n := voipPush(tokBusy, time.Now().Add(45*time.Second))
		n.Wanted = func(ctx context.Context) bool {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("Wanted called without a deadline")
			}
			return asked.Add(1) < 2 // the call ends after the first retry
		}
		h.push(t, n)
		time.Sleep(time.Hour)

		f.want(t, tokBusy, 2)
		if got := asked.Load(); got != 2 {
			t.Errorf("Wanted asked %d times, want 2 (once per retry, not before the first attempt)", got)
		}
		wantCount(t, h.s.m.pushes, 1, "voip", "not_wanted")
		wantCount(t, h.s.m.pushes, 0, "voip", "success")
		if !strings.Contains(h.logs.String(), "no longer wanted") {
			t.Error("the dropped retry is not logged")
		}
	})
}

// No answer at all (connection reset, lost): retried like a 5xx.
func TestNetworkErrorRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, f, _ := sendOne(t, Config{RetryMin: time.Second}, 45*time.Second,
			memAnswer{err: syscall.ECONNRESET}, memAnswer{err: errors.New("http2: client connection lost")}, memAnswer{})

		reqs := f.want(t, "", 3)
		sameID(t, reqs)
		wantCount(t, h.s.m.retries, 2, "voip", "network")
		wantCount(t, h.s.m.pushes, 1, "voip", "success")
	})
}

// A request that gets no answer is cut at the push's deadline, not at the
// request timeout: nothing reaches APNs for a call that stopped ringing.
func TestSlowAnswerCutAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, f, t0 := sendOne(t, Config{Timeout: 10 * time.Second}, 3*time.Second, memAnswer{hang: true})
		deadline := t0.Add(3 * time.Second)

		reqs := f.want(t, "", 1)
		if !reqs[0].deadline.Equal(deadline) {
			t.Errorf("request deadline %v, want the push's %v", reqs[0].deadline, deadline)
		}
		wantCount(t, h.s.m.pushes, 1, "voip", "deadline")
	})
}

// A slow answer beyond the request timeout is retried while the deadline
// allows, with the same apns-id.
func TestSlowAnswerRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, f, t0 := sendOne(t, Config{Timeout: 2 * time.Second, RetryMin: time.Second}, 45*time.Second,
			memAnswer{delay: 5 * time.Second}, memAnswer{delay: 100 * time.Millisecond})

		reqs := f.want(t, "", 2)
		if want := t0.Add(2 * time.Second); !reqs[0].deadline.Equal(want) {
			t.Errorf("first request deadline %v, want t0+timeout", reqs[0].deadline.Sub(t0))
		}
		within(t, "second attempt", reqs[1].at.Sub(t0), 2500*time.Millisecond, 3500*time.Millisecond)
		sameID(t, reqs)
		wantCount(t, h.s.m.retries, 1, "voip", "timeout")
		wantCount(t, h.s.m.pushes, 1, "voip", "success")
	})
}

// A push slower than HoldEvery asks Wanted while it is in flight (for a
// wake, that renews its lease, so no other process takes the wake over and
// pushes it a second time) and is sent once.
func TestSlowPushHoldsItsWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		f.script(tokBusy, memAnswer{delay: 7 * time.Second})
		h := start(t, f, Config{Timeout: 10 * time.Second, HoldEvery: 2 * time.Second})
		var asked []time.Duration
		var mu sync.Mutex
		t0 := time.Now()
		n := voipPush(tokBusy, t0.Add(45*time.Second))
		n.Wanted = func(context.Context) bool {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, time.Since(t0))
			return true
		}
		h.push(t, n)
		time.Sleep(time.Hour)

		f.want(t, tokBusy, 1)
		wantCount(t, h.s.m.pushes, 1, "voip", "success")
		mu.Lock()
		defer mu.Unlock()
		if want := []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second}; !slices.Equal(asked, want) {
			t.Errorf("Wanted asked at %v, want %v (each HoldEvery while in flight, not after)", asked, want)
		}
	})
}

// A push in flight that is no longer wanted (its call ended, or another
// process took its wake over) is cut, counted as not_wanted, and not
// retried.
func TestPushCutInFlightWhenNotWanted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		f.script(tokBusy, memAnswer{delay: 7 * time.Second}, memAnswer{})
		h := start(t, f, Config{Timeout: 10 * time.Second, HoldEvery: 2 * time.Second, RetryMin: time.Second})
		var asked atomic.Int32
		n := voipPush(tokBusy, time.Now().Add(45*time.Second))
		n.Wanted = func(context.Context) bool { return asked.Add(1) < 2 }
		h.push(t, n)
		time.Sleep(time.Hour)

		f.want(t, tokBusy, 1)
		if got := asked.Load(); got != 2 {
			t.Errorf("Wanted asked %d times, want 2", got)
		}
		wantCount(t, h.s.m.pushes, 1, "voip", "not_wanted")
		wantCount(t, h.s.m.pushes, 0, "voip", "success")
		wantCount(t, h.s.m.retries, 0, "voip", "not_wanted")
		if !strings.Contains(h.logs.String(), "push cut in flight") {
			t.Error("the cut push is not logged")
		}
	})
}

// Pushes waiting for a retry hold no sender: with one sender and five
// pushes backing off, a fresh call push goes out at once.
func TestFreshPushNotStarvedByBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		var down []string
		for i := range 5 {
			tok := fmt.Sprintf("%062x%02x", 0xdead, i)
			f.script(tok, memAnswer{status: 503, reason: "ServiceUnavailable", delay: 20 * time.Millisecond})
			down = append(down, tok)
		}
		f.script(tokOK, memAnswer{delay: 20 * time.Millisecond})
		h := start(t, f, Config{Workers: 1, RetryMin: 2 * time.Second, RetryMax: 10 * time.Second})

		for _, tok := range down {
			h.push(t, voipPush(tok, time.Now().Add(45*time.Second)))
		}
		time.Sleep(500 * time.Millisecond) // every one failed once and backs off
		synctest.Wait()
		if got := testutil.ToFloat64(h.s.m.retries); got != 5 {
			t.Fatalf("%v pushes backing off, want 5", got)
		}
		h.s.mu.Lock()
		waiting := len(h.s.waiting)
		h.s.mu.Unlock()
		if waiting != 5 {
			t.Fatalf("%d pushes wait for a retry, want 5", waiting)
		}

		fresh := time.Now()
		h.push(t, voipPush(tokOK, fresh.Add(45*time.Second)))
		time.Sleep(50 * time.Millisecond)
		reqs := f.requestsFor(tokOK)
		if len(reqs) != 1 {
			t.Fatalf("the fresh push was not sent while the others backed off (%d requests)", len(reqs))
		}
		if !reqs[0].at.Equal(fresh) {
			t.Errorf("fresh push sent %v after Push, want at once", reqs[0].at.Sub(fresh))
		}
	})
}

// Push never waits: past QueueSize pushes (plus one per sender) it answers
// ErrQueueFull at once and counts it.
func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		f.script(tokSlow, memAnswer{hang: true})
		h := start(t, f, Config{Workers: 1, QueueSize: 2})

		t0 := time.Now()
		for range 3 {
			h.push(t, voipPush(tokSlow, t0.Add(45*time.Second)))
		}
		err := h.s.Push(context.Background(), voipPush(tokSlow, t0.Add(45*time.Second)))
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Push = %v, want ErrQueueFull", err)
		}
		if !time.Now().Equal(t0) {
			t.Errorf("Push waited %v", time.Since(t0))
		}
		wantCount(t, h.s.m.dropped, 1, "voip", "queue_full")
	})
}

// Each APNs connection carries at most MaxInflight requests; one app's full
// connection does not hold back another app's pushes.
func TestInflightLimitPerConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		f.script(tokSlow, memAnswer{delay: time.Second})
		other := tokenApp(t, "com.example.other")
		other.KeyID = "KEY7654321"
		h := start(t, f, Config{Workers: 8, MaxInflight: 2, Apps: []App{tokenApp(t, bundle), other}})

		t0 := time.Now()
		for range 5 {
			h.push(t, voipPush(tokSlow, t0.Add(45*time.Second)))
		}
		n := voipPush(tokSlow, t0.Add(45*time.Second))
		n.BundleID = "com.example.other"
		h.push(t, n)
		time.Sleep(time.Minute)

		f.mu.Lock()
		peak, peakOther := f.peak[bundle+".voip"], f.peak["com.example.other.voip"]
		f.mu.Unlock()
		if peak != 2 {
			t.Errorf("%d requests in flight at once on one connection, want the limit 2", peak)
		}
		if peakOther != 1 {
			t.Errorf("other app: %d in flight", peakOther)
		}
		var last time.Time
		for _, r := range f.requests() {
			if r.header.Get("apns-topic") == "com.example.other.voip" && !r.at.Equal(t0) {
				t.Errorf("the other app's push waited %v for the first app's connection", r.at.Sub(t0))
			}
			last = r.at
		}
		within(t, "last request", last.Sub(t0), 2*time.Second, 2*time.Second) // 5 requests, 2 at a time, 1 s each
		wantCount(t, h.s.m.pushes, 6, "voip", "success")
	})
}

// Close sends what is queued whose deadline is still ahead, including a
// push waiting for its retry, and counts the one whose deadline passed.
func TestCloseSendsQueuedPushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		f.script(tokOK, memAnswer{delay: 100 * time.Millisecond})
		f.script(tokDown, memAnswer{status: 503, reason: "ServiceUnavailable"}, memAnswer{})
		h := start(t, f, Config{Workers: 1, RetryMin: time.Second})

		t0 := time.Now()
		h.push(t, voipPush(tokDown, t0.Add(45*time.Second)))
		for range 4 {
			h.push(t, voipPush(tokOK, t0.Add(45*time.Second)))
		}
		h.push(t, voipPush(tokOK, t0.Add(250*time.Millisecond))) // its call ends while it waits
		if err := h.s.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n := len(f.requestsFor(tokOK)); n != 4 {
			t.Errorf("%d queued pushes sent, want 4", n)
		}
		if n := len(f.requestsFor(tokDown)); n != 2 {
			t.Errorf("the push backing off was tried %d times, want 2", n)
		}
		wantCount(t, h.s.m.pushes, 5, "voip", "success")
		wantCount(t, h.s.m.dropped, 1, "voip", "expired")
		if err := h.s.Push(context.Background(), voipPush(tokOK, time.Now().Add(time.Minute))); !errors.Is(err, ErrClosed) {
			t.Errorf("Push after Close = %v, want ErrClosed", err)
		}
		wantCount(t, h.s.m.dropped, 1, "voip", "closed")
	})
}

// When Close runs out of time, the request in flight is cut and every push
// left is counted: nothing goes silently.
func TestCloseOutOfTimeCountsWhatIsLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		f.script(tokSlow, memAnswer{hang: true})
		f.script(tokDown, memAnswer{status: 503, reason: "ServiceUnavailable"})
		h := start(t, f, Config{Workers: 1, RetryMin: 30 * time.Second, RetryMax: 30 * time.Second})

		t0 := time.Now()
		h.push(t, voipPush(tokDown, t0.Add(10*time.Minute))) // fails, then waits ~30 s to retry
		synctest.Wait()
		h.push(t, voipPush(tokSlow, t0.Add(10*time.Minute))) // hangs in the one sender
		h.push(t, voipPush(tokOK, t0.Add(10*time.Minute)))   // queued behind it
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := h.s.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), "3 pushes unsent") {
			t.Fatalf("Close = %v, want 3 pushes unsent", err)
		}
		if took := time.Since(t0); took != 2*time.Second {
			t.Errorf("Close took %v, want its 2 s", took)
		}
		if n := count(h.s.m.pushes, "voip", "shutdown"); n != 2 { // tried once each
			t.Errorf("pushes{shutdown} = %d, want 2", n)
		}
		if n := count(h.s.m.dropped, "voip", "shutdown"); n != 1 { // never tried
			t.Errorf("dropped{shutdown} = %d, want 1", n)
		}
		if len(f.requestsFor(tokOK)) != 0 {
			t.Error("a push was sent after Close gave up")
		}
	})
}

// ExpiredProviderToken on a JWT older than 20 minutes: a new one is signed
// and the push retried at once.
func TestExpiredProviderTokenRenewsOldJWT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		h := start(t, f, Config{RetryMin: time.Second})
		t0 := time.Now()
		h.push(t, voipPush(tokOK, t0.Add(time.Minute)))
		time.Sleep(25 * time.Minute)

		f.script(tokBusy, memAnswer{status: http.StatusForbidden, reason: "ExpiredProviderToken"}, memAnswer{})
		t1 := time.Now()
		h.push(t, voipPush(tokBusy, t1.Add(time.Minute)))
		time.Sleep(time.Minute)

		first := f.requestsFor(tokOK)[0]
		reqs := f.want(t, tokBusy, 2)
		iat0, _ := jwtClaims(t, first.header.Get("authorization"))
		iat1, _ := jwtClaims(t, reqs[0].header.Get("authorization"))
		iat2, _ := jwtClaims(t, reqs[1].header.Get("authorization"))
		if iat0 != t0.Unix() || iat1 != iat0 {
			t.Errorf("iat %d then %d, want the first JWT (%d) reused", iat0, iat1, t0.Unix())
		}
		if iat2 != t1.Unix() {
			t.Errorf("retry iat %d, want a new JWT issued at %d", iat2, t1.Unix())
		}
		if !reqs[1].at.Equal(reqs[0].at) {
			t.Errorf("retry after %v, want at once with the new JWT", reqs[1].at.Sub(reqs[0].at))
		}
		wantCount(t, h.s.m.pushes, 2, "voip", "success")
	})
}

// ExpiredProviderToken on a JWT younger than 20 minutes: it is kept (a new
// one would earn TooManyProviderTokenUpdates) and the push backs off.
func TestExpiredProviderTokenKeepsYoungJWT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		h := start(t, f, Config{RetryMin: time.Second})
		h.push(t, voipPush(tokOK, time.Now().Add(time.Minute)))
		time.Sleep(5 * time.Minute)

		f.script(tokBusy, memAnswer{status: http.StatusForbidden, reason: "ExpiredProviderToken"}, memAnswer{})
		h.push(t, voipPush(tokBusy, time.Now().Add(time.Minute)))
		time.Sleep(time.Minute)

		reqs := f.want(t, tokBusy, 2)
		if a, b := reqs[0].header.Get("authorization"), reqs[1].header.Get("authorization"); a != b || a != f.requestsFor(tokOK)[0].header.Get("authorization") {
			t.Error("a JWT younger than 20 minutes was replaced")
		}
		within(t, "backoff", reqs[1].at.Sub(reqs[0].at), 500*time.Millisecond, 1500*time.Millisecond)
	})
}

// One JWT per signing key serves every app and environment using it, and
// is renewed after 50 minutes, inside Apple's 20 to 60.
func TestJWTSharedAndRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newMemAPNs()
		key := newKey(t)
		app := func(id string) App {
			return App{BundleID: id, TeamID: "TEAM123456", KeyID: "KEY1234567", AuthKey: key}
		}
		other := App{BundleID: "com.example.third", TeamID: "TEAM123456", KeyID: "KEY7654321", AuthKey: newKey(t)}
		h := start(t, f, Config{Apps: []App{app(bundle), app("com.example.other"), other}})

		t0 := time.Now()
		send := func(bundleID, env string) string {
			t.Helper()
			n := voipPush(tokOK, time.Now().Add(time.Minute))
			n.BundleID, n.Environment = bundleID, env
			h.push(t, n)
			synctest.Wait()
			reqs := f.requests()
			return reqs[len(reqs)-1].header.Get("authorization")
		}
		first := send(bundle, Production)
		for _, p := range [][2]string{{bundle, Sandbox}, {"com.example.other", Production}, {"com.example.other", Sandbox}} {
			if got := send(p[0], p[1]); got != first {
				t.Errorf("%s (%s) signs its own JWT, want the shared one", p[0], p[1])
			}
		}
		if got := send("com.example.third", Production); got == first {
			t.Error("another key id got the same JWT")
		}
		iat, iss := jwtClaims(t, first)
		if iat != t0.Unix() || iss != "TEAM123456" {
			t.Errorf("iat %d iss %q", iat, iss)
		}

		time.Sleep(49 * time.Minute)
		if got := send(bundle, Sandbox); got != first {
			t.Error("JWT renewed before 50 minutes")
		}
		time.Sleep(2 * time.Minute)
		renewed := send("com.example.other", Production)
		if iat, _ := jwtClaims(t, renewed); iat != t0.Add(51*time.Minute).Unix() {
			t.Errorf("after 51 minutes iat = %d, want a new JWT at %d", iat, t0.Add(51*time.Minute).Unix())
		}
		if got := send(bundle, Production); got != renewed {
			t.Error("the renewed JWT is not shared")
		}
	})
}
