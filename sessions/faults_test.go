package sessions

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/jingle"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A propose whose answer never reaches its caller (the worker gave up, the
// connection died with the answer, the process went) is not lost: its
// script marked the device for its attempt, and when the wake's lease
// comes due the next timer poll takes it over. The call rings once.
func TestDecidedPushNeverDropped(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	p := proposal{account: "bob@example.com", caller: "alice@example.com", id: "c1", from: "alice@example.com/pc",
		media: []string{"audio"}, arrived: f.clock.Now(), attempt: newAttempt(), source: "deliver"}
	if res, err := f.store.propose(ctx, p); err != nil || len(res.wakes) != 1 {
		t.Fatalf("propose: %+v %v", res, err) // the answer the caller never saw
	}
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("taken over before the lease ran out: %s", kinds(got))
	}
	f.clock.add(f.svc.cfg.Lease)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); kinds(got) != "voip:iphone" || got[0].Wake.Why != WhyTakeover {
		t.Fatalf("after the lease: %s", kinds(got))
	}
	f.clock.add(f.svc.cfg.Lease)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("rang twice: %s", kinds(got))
	}
	// A later copy of the same propose rings nothing either.
	f.call(t, "propose", "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("a copy after the takeover: %s", kinds(got))
	}
}

// Callers that give up while Redis is paused leave their requests to the
// batch, which alone writes them: no data race (run with -race), and each
// request gets its answer once Redis resumes.
func TestBatchCallersGiveUp(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	if err := f.store.Ping(ctx); err != nil { // a warm connection for the batch
		t.Fatal(err)
	}
	f.redis.Pause()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			p := proposal{account: "bob@example.com", caller: "caller" + strconv.Itoa(i) + "@example.com", id: "c",
				from: "x@example.com/pc", arrived: f.clock.Now(), attempt: newAttempt(), source: "deliver"}
			_, _ = f.store.propose(cctx, p)
		}()
	}
	stalled := time.AfterFunc(2*time.Second, f.redis.Resume)
	wg.Wait()
	stalled.Stop()
	f.redis.Resume()
	testenv.Eventually(t, 10*time.Second, func() bool { return f.store.Ping(ctx) == nil }, "redis to answer again")
}

// With Redis unreachable, a call rings from memory, but never for a stale
// propose or on a device whose resource was live (unless the server could
// not deliver the copy); the outage is logged once; once Redis answers,
// the call is recorded, so its next copy rings nothing twice.
func TestFailOpenWithoutLies(t *testing.T) {
	logs := &lockedBuffer{}
	f := newFixture(t, nil)
	f.svc.log = slog.New(slog.NewTextHandler(logs, nil))
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	f.register(t, "bob@example.com", "desk", "mac", strings.Replace(voipToken, "aaaa", "cccc", 1), "")
	f.presence(t, "bob@example.com/desk", "")                                  // the mac is live
	f.call(t, "propose", "alice@example.com/pc", "bob@example.com", "c0", nil) // fills the cache
	f.push.take()
	f.call(t, "retract", "alice@example.com/pc", "bob@example.com", "c0", nil)
	f.push.take()

	f.redis.Pause()
	defer f.redis.Resume()
	// A stale copy: nothing.
	_ = f.svc.Call(ctx, proposeEvent(t, "c-stale", func(ev *jingle.CallEvent) { ev.Delay = f.clock.Now().Add(-time.Minute) }))
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("a stale propose rang while Redis was away: %s", kinds(got))
	}
	// A fresh one: the phone, not the live mac.
	_ = f.svc.Call(ctx, proposeEvent(t, "c1", nil))
	if got := f.push.take(); kinds(got) != "voip:iphone" || got[0].Wake.Why != WhyFailOpen {
		t.Fatalf("fail open: %s", kinds(got))
	}
	// The server could not deliver to the mac either: now it rings.
	_ = f.svc.Call(ctx, proposeEvent(t, "c1", undeliverable))
	if got := f.push.take(); kinds(got) != "voip:mac" {
		t.Fatalf("fail open, undeliverable copy: %s", kinds(got))
	}
	if n := testutil.ToFloat64(f.svc.m.failOpen); n != 3-1 {
		t.Errorf("fail_open_total = %v, want 2", n)
	}
	if n := strings.Count(logs.String(), "redis does not answer"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, logs.String())
	}

	f.redis.Resume()
	testenv.Eventually(t, 10*time.Second, func() bool {
		f.svc.FireTimers(ctx) // Redis answers: the outage ends, its calls are recorded
		return strings.Contains(logs.String(), "redis answers again")
	}, "the outage to end")
	testenv.Eventually(t, 10*time.Second, func() bool {
		ok, _ := f.rdb.Exists(ctx, f.store.keys.call("bob@example.com", callRef("alice@example.com", "c1"))).Result()
		return ok == 1
	}, "the call rung from memory to be recorded")
	// Another process, with nothing in memory, sees the recorded call.
	other := NewService(f.store, f.push, nil, f.svc.cfg, nil, nil)
	if err := other.Call(ctx, proposeEvent(t, "c1", undeliverable)); err != nil {
		t.Fatal(err)
	}
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("a copy of a call rung from memory rang again: %s", kinds(got))
	}
}

func proposeEvent(t *testing.T, id string, mod func(*jingle.CallEvent)) jingle.CallEvent {
	ev := jingle.CallEvent{Action: jingle.ActionPropose, ID: id, Media: []string{"audio"},
		From: mustJID(t, "alice@example.com/pc"), To: mustJID(t, "bob@example.com"),
		Wrapper: jingle.Wrapper{From: mustJID(t, "example.com"), To: mustJID(t, "push.example.com")}}
	if mod != nil {
		mod(&ev)
	}
	return ev
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A presence Redis does not take is kept, and written once it answers: a
// lost "unavailable" would keep the phone from ringing.
func TestPresenceKeptWhileRedisAway(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	f.presence(t, "bob@example.com/phone", "")
	f.redis.Pause()
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := f.svc.Presence(cctx, jingle.Presence{From: mustJID(t, "bob@example.com/phone"), Type: "unavailable"})
	cancel()
	if err == nil {
		t.Fatal("a presence was recorded while Redis was paused")
	}
	f.redis.Resume()
	testenv.Eventually(t, 10*time.Second, func() bool {
		f.svc.presence.flush(ctx, f.svc)
		n, _ := f.rdb.HLen(ctx, f.store.keys.presence("bob@example.com")).Result()
		return n == 0
	}, "the kept unavailable presence to be written")
	f.call(t, "propose", "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("after the kept presence: %s", kinds(got))
	}
}

// Each device expires on its own, its device ttl after its last
// registration, whatever its siblings do; an expired one is not pushed
// and does not count against the limit. A token registered under another
// account moves there.
func TestDevicesAgeOneByOne(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.DeviceTTL = 30 * 24 * time.Hour; c.MaxDevices = 2 })
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "old", voipToken, "")
	f.clock.add(20 * 24 * time.Hour)
	other := strings.Replace(voipToken, "aaaa", "cccc", 1)
	f.register(t, "bob@example.com", "pad", "new", other, "")
	f.clock.add(11 * 24 * time.Hour) // "old" is 31 days old, "new" 11
	f.call(t, "propose", "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); kinds(got) != "voip:new" {
		t.Fatalf("after the old device aged out: %s", kinds(got))
	}
	third := strings.Replace(voipToken, "aaaa", "dddd", 1)
	f.register(t, "bob@example.com", "mac", "mac", third, "") // room: the aged one does not count

	// The pad's token registered again by carol (the app switched
	// accounts): bob's pad no longer has it.
	if _, err := f.svc.Register(ctx, Registration{Account: "carol@example.com", DeviceID: "pad2", VoIPToken: other}); err != nil {
		t.Fatal(err)
	}
	ds, _ := f.store.Devices(ctx, "bob@example.com")
	for _, d := range ds {
		if d.VoIPToken == other {
			t.Errorf("bob still holds the token carol registered: %+v", d)
		}
	}
	f.call(t, "propose", "alice@example.com/pc", "carol@example.com", "c2", nil)
	if got := f.push.take(); kinds(got) != "voip:pad2" {
		t.Fatalf("carol's call: %s", kinds(got))
	}
}

// The ring timeout counts from when the stanza arrived, not from when a
// worker got to it.
func TestRingTimeFromArrival(t *testing.T) {
	f := newFixture(t, nil)
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	arrived := f.clock.Now()
	f.clock.add(3 * time.Second) // the stanza waited for a worker
	p := proposal{account: "bob@example.com", caller: "alice@example.com", id: "c1", from: "alice@example.com/pc",
		arrived: arrived, age: 3 * time.Second, attempt: newAttempt(), source: "deliver"}
	res, err := f.store.propose(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if want := arrived.Add(f.svc.cfg.RingTimeout); !res.call.Deadline.Equal(want) || !res.call.Created.Equal(arrived) {
		t.Errorf("call created %v, deadline %v; want %v and %v", res.call.Created, res.call.Deadline, arrived, want)
	}
}

func slogTo(w *lockedBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
