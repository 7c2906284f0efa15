package sessions

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/jingle"
)

// A call's life is in its trace: each copy of the propose and what it
// decided, the pushes, the end, and copies after the end; a stale copy is
// traced and listed too, though it creates no call.
func TestTrace(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.register(t, "bob@example.com", "pc", "laptop", voipToken[:60]+"ffff", "")
	f.presence(t, "bob@example.com/pc", "")

	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	c1At := f.clock.Now()
	f.clock.add(time.Second)
	f.call(t, jingle.ActionPropose, "carol@example.com/pc", "bob@example.com", "old", func(ev *jingle.CallEvent) {
		ev.Delay = f.clock.Now().Add(-time.Minute)
	})

	calls, err := f.store.RecentCalls(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []CallKey{{"bob@example.com", "carol@example.com", "old"}, {"bob@example.com", "alice@example.com", "c1"}}
	if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Fatalf("recent calls %v, want %v", calls, want)
	}

	tr, err := f.store.Trace(ctx, "bob@example.com", "alice@example.com", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if tr.State != StateCancelled || tr.From != "alice@example.com/pc" || !tr.Created.Equal(c1At) || tr.Ended.IsZero() {
		t.Errorf("call %+v", tr)
	}
	if len(tr.Wakes) != 2 || tr.Wakes[0] != (TraceWake{Device: "iphone", Kind: "voip", State: "delivered"}) || tr.Wakes[1].Device != "laptop" {
		t.Errorf("wakes %+v", tr.Wakes)
	}
	var got []string
	for _, e := range tr.Events {
		if !e.At.Equal(c1At) {
			t.Errorf("event %+v at the wrong time", e)
		}
		got = append(got, e.Event+" "+e.Text)
	}
	wantEvents := []string{
		"created from=alice@example.com/pc media=audio age=0",
		"seen deliver iphone=voip:presence laptop=live",
		"push test success",
		"seen undeliverable iphone=woken laptop=voip:undeliverable",
		"push test success",
		"ended cancelled retract woken=2",
		"seen deliver ended=cancelled",
	}
	if strings.Join(got, "\n") != strings.Join(wantEvents, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantEvents, "\n"))
	}

	stale, err := f.store.Trace(ctx, "bob@example.com", "carol@example.com", "old")
	if err != nil {
		t.Fatal(err)
	}
	if stale.State != "" || len(stale.Events) != 1 || stale.Events[0].Text != "deliver stale delay=60000" {
		t.Errorf("stale copy %+v", stale)
	}

	none, err := f.store.Trace(ctx, "bob@example.com", "alice@example.com", "nope")
	if err != nil || none.State != "" || len(none.Events) != 0 {
		t.Errorf("unknown call %+v, %v", none, err)
	}

	p, err := f.store.Presence(ctx, "bob@example.com")
	if err != nil || len(p) != 1 || !p["pc"].Equal(c1At) {
		t.Errorf("presence %v, %v", p, err)
	}
}

// Explain puts each kind of line in words.
func TestTraceExplain(t *testing.T) {
	for line, want := range map[string]string{
		"seen deliver iphone=voip:presence laptop=live":              "copy delivered to the component: iphone woken (voip): its resource is not available; laptop not woken: its resource is available (live)",
		"seen undeliverable iphone=woken":                            "copy to undeliverable@ (the server could not deliver it live): iphone not woken again: already woken for this call",
		"seen publish iphone=alert:publish":                          "XEP-0357 publish: iphone woken (alert): a XEP-0357 publish came with the call",
		"seen deliver stale delay=61000":                             "copy delivered to the component: stale (delayed 61000 ms, more than calls.stale_after): never rings",
		"seen deliver no devices":                                    "copy delivered to the component: the account has no devices",
		"seen deliver ended=missed":                                  "copy delivered to the component: the call had ended (missed), ignored",
		"refused pair_rate":                                          "refused by a limit (pair_rate): nothing rings",
		"push iphone voip success status=200 latency=3ms attempts=1": "voip push to iphone: success (status=200 latency=3ms attempts=1)",
		"push iphone alert dry_run status=0 latency=0s attempts=0":   "alert push to iphone: logged, not sent (apns.dry_run)",
		"ended missed timeout woken=1":                               "ended missed by timeout, devices woken: 1",
		"takeover iphone from abc":                                   "wake of iphone taken over: the process that held it did not deliver it",
	} {
		ev := parseTraceLine("1700000000000 " + line)
		if got := ev.Explain(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", line, got, want)
		}
		if ev.At.UnixMilli() != 1700000000000 {
			t.Errorf("%s: at %v", line, ev.At)
		}
	}
}

// A trace keeps its newest 64 lines and expires TraceTTL after its first;
// push lines go only to a trace that its call started.
func TestTraceCapped(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	none := WakeKey{Call: CallKey{Account: "bob@example.com", Caller: "alice@example.com", ID: "never"}, DeviceID: "iphone"}
	if err := f.store.recordPush(ctx, "note", none, "voip", "push iphone voip lost"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.rdb.Exists(ctx, f.store.keys.trace("bob@example.com", "alice@example.com/never")).Result(); n != 0 || err != nil {
		t.Errorf("a push line started a trace of its own: %d, %v", n, err)
	}
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	k := WakeKey{Call: CallKey{Account: "bob@example.com", Caller: "alice@example.com", ID: "c1"}, DeviceID: "iphone"}
	for i := range 70 {
		if err := f.store.recordPush(ctx, "note", k, "voip", "push iphone voip line"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := f.store.Trace(ctx, "bob@example.com", "alice@example.com", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Events) != 64 || tr.Events[0].Text != "iphone voip line6" || tr.Events[63].Text != "iphone voip line69" {
		t.Errorf("%d events, from %+v", len(tr.Events), tr.Events[0])
	}
	ttl, err := f.rdb.PTTL(ctx, f.store.keys.trace("bob@example.com", "alice@example.com/c1")).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("trace TTL %v, %v; want the fixture's hour", ttl, err)
	}
}
