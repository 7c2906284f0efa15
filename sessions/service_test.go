package sessions

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/jingle"
)

const (
	voipToken  = "aaaa000000000000000000000000000000000000000000000000000000000001"
	alertToken = "bbbb000000000000000000000000000000000000000000000000000000000001"
)

// decision is one thing the Service told its Notifier.
type decision struct {
	Kind     string // how an APNs push would carry it: voip, alert or background
	DeviceID string
	Token    string // the device's token for that push
	Wake     *Wake
	End      *CallEnd
	Message  *Message
}

// recorder is a Notifier that keeps what it is given. It delivers each
// wake it takes at once, the way pushnotify reports a push APNs took
// (Feedback.Pushed), so that no wake's lease comes due.
type recorder struct {
	mu    sync.Mutex
	got   []decision
	fail  error
	store *Store
}

func (r *recorder) add(d decision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, d)
	return nil
}

func (r *recorder) Wake(ctx context.Context, w Wake) error {
	d := decision{Kind: string(w.Kind), DeviceID: w.Device.ID, Token: w.Device.VoIPToken, Wake: &w}
	if w.Kind == WakeAlert {
		d.Token = w.Device.Token
	}
	if err := r.add(d); err != nil {
		return err
	}
	if r.store != nil && w.Why != WhyFailOpen {
		if err := r.store.recordPush(ctx, "delivered", w.Key(), string(w.Kind), "push test success"); err != nil {
			return err
		}
	}
	return nil
}

func (r *recorder) CallEnded(_ context.Context, e CallEnd) error {
	kind := "background"
	if e.State.Unanswered() {
		kind = "alert"
	}
	return r.add(decision{Kind: kind, DeviceID: e.Device.ID, Token: e.Device.Token, End: &e})
}

func (r *recorder) Message(_ context.Context, m Message) error {
	return r.add(decision{Kind: "alert", DeviceID: m.Device.ID, Token: m.Device.Token, Message: &m})
}

func (r *recorder) take() []decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc   *Service
	store *Store
	push  *recorder
	clock *clock
	rdb   *redis.Client
	redis *testenv.Redis
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	r := testenv.StartRedis(t)
	// Short timeouts, as jinglepush's own (redis.timeout): the fault tests
	// pause Redis.
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	store := NewStore(rdb, "test:", StoreOptions{TraceTTL: time.Hour})
	if err := store.LoadScripts(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().Truncate(time.Millisecond)}
	cfg := Config{
		ServedDomains: []string{"example.com"},
		Apps:          []App{{BundleID: "com.example.chat", Environment: "production"}, {BundleID: "com.example.other", Environment: "sandbox"}},
		RingTimeout:   45 * time.Second,
		StaleAfter:    30 * time.Second,
		PublishHold:   2 * time.Second,
		WakeOnPublish: true,
		MaxDevices:    3,
		Now:           clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	push := &recorder{store: store}
	return &fixture{svc: NewService(store, push, nil, cfg, nil, nil), store: store, push: push, clock: clk, rdb: rdb, redis: r}
}

// byNode finds the device a XEP-0357 node names, as a publish does.
func (f *fixture) byNode(t *testing.T, node string) (string, Device, bool) {
	t.Helper()
	account, _, ok := parseNode(node)
	if !ok {
		return "", Device{}, false
	}
	ds, err := f.store.Devices(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Node == node {
			return account, d, true
		}
	}
	return "", Device{}, false
}

// timers counts the timers of account's bucket.
func (f *fixture) timers(t *testing.T, account string) int64 {
	t.Helper()
	n, err := f.rdb.ZCard(context.Background(), f.store.keys.timers(f.store.keys.base(account))).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustJID(t *testing.T, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (f *fixture) register(t *testing.T, account, resource, deviceID, voip, tok string) Device {
	t.Helper()
	d, err := f.svc.Register(context.Background(), Registration{
		Account: account, Resource: resource, DeviceID: deviceID, VoIPToken: voip, Token: tok,
	})
	if err != nil {
		t.Fatalf("register %s/%s: %v", account, deviceID, err)
	}
	return d
}

func (f *fixture) call(t *testing.T, action jingle.Action, from, to, id string, mod func(*jingle.CallEvent)) {
	t.Helper()
	ev := jingle.CallEvent{
		Action: action, ID: id, From: mustJID(t, from), To: mustJID(t, to), Media: []string{"audio"},
		Wrapper: jingle.Wrapper{From: mustJID(t, "example.com"), To: mustJID(t, "push.example.com")},
	}
	if mod != nil {
		mod(&ev)
	}
	if err := f.svc.Call(context.Background(), ev); err != nil {
		t.Fatalf("%s %s: %v", action, id, err)
	}
}

func undeliverable(ev *jingle.CallEvent) {
	ev.Wrapper.To = jid.MustParse("undeliverable@push.example.com")
}

func (f *fixture) presence(t *testing.T, from, typ string) {
	t.Helper()
	if err := f.svc.Presence(context.Background(), jingle.Presence{From: mustJID(t, from), To: mustJID(t, "push.example.com"), Type: typ}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) publish(t *testing.T, d Device, secret string) error {
	t.Helper()
	return f.svc.Publish(context.Background(), mustJID(t, "example.com"), jingle.Publish{
		Node:    d.Node,
		Options: jingle.Form{Type: "submit", Fields: map[string][]string{"secret": {secret}}},
		Summary: jingle.Summary{MessageCount: 1, Body: "New Message!"},
	})
}

func kinds(ds []decision) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Kind+":"+d.DeviceID)
	}
	return strings.Join(s, ",")
}

func TestRegister(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	d := f.register(t, "bob@example.com", "phone", "dev1", strings.ToUpper(voipToken), "")
	if d.VoIPToken != voipToken {
		t.Errorf("token stored as %q, want lower case", d.VoIPToken)
	}
	if len(d.Node) < 16 || len(d.Secret) < 22 || d.BundleID != "com.example.chat" || d.Environment != "production" {
		t.Errorf("registered %+v", d)
	}

	// Re-registering keeps node and secret, replaces tokens and resource.
	again := f.register(t, "bob@example.com", "phone2", "dev1", "", alertToken)
	if again.Node != d.Node || again.Secret != d.Secret {
		t.Errorf("re-registration changed node/secret: %+v vs %+v", again, d)
	}
	if again.VoIPToken != "" || again.Token != alertToken || again.Resource != "phone2" {
		t.Errorf("re-registration did not replace tokens: %+v", again)
	}
	acct, byNode, ok := f.byNode(t, d.Node)
	if !ok || acct != "bob@example.com" || byNode.ID != "dev1" {
		t.Fatalf("byNode = %q %+v %v", acct, byNode, ok)
	}

	bad := [...]struct {
		r     Registration
		kind  error
		field string
	}{
		0: {Registration{Account: "bob@example.com", VoIPToken: voipToken}, ErrInvalid, "device-id"},
		1: {Registration{Account: "bob@example.com", DeviceID: "d", VoIPToken: "abc"}, ErrInvalid, "voip-token"},
		2: {Registration{Account: "bob@example.com", DeviceID: "d", Token: voipToken + "0"}, ErrInvalid, "token"},
		3: {Registration{Account: "bob@example.com", DeviceID: "d", Token: strings.Repeat("zz", 32)}, ErrInvalid, "token"},
		4: {Registration{Account: "bob@example.com", DeviceID: "d"}, ErrInvalid, "voip-token"},
		5: {Registration{Account: "bob@example.com", DeviceID: "d", VoIPToken: voipToken, BundleID: "com.evil"}, ErrUnknownApp, "bundle-id"},
		6: {Registration{Account: "bob@example.com", DeviceID: "d", VoIPToken: voipToken, Environment: "staging"}, ErrInvalid, "environment"},
		7: {Registration{Account: "mallory@evil.example", DeviceID: "d", VoIPToken: voipToken}, ErrForbidden, ""},
		8: {Registration{Account: "bob@example.com", DeviceID: "has space", VoIPToken: voipToken}, ErrInvalid, "device-id"},
		9: {Registration{Account: "bob@example.com", DeviceID: "d", VoIPToken: strings.Repeat("ab", 101)}, ErrInvalid, "voip-token"},
	}
	for i, tc := range bad {
		_, err := f.svc.Register(ctx, tc.r)
		var in *InputError
		if !errors.Is(err, tc.kind) || !errors.As(err, &in) || in.Field != tc.field || !strings.Contains(in.Text, tc.field) {
			t.Errorf("%d: Register(%+v) = %v, want %v naming %q", i, tc.r, err, tc.kind, tc.field)
		}
	}
	// Nothing was stored for the rejected requests.
	if ds, _ := f.store.Devices(ctx, "bob@example.com"); len(ds) != 1 {
		t.Errorf("bob has %d devices, want 1", len(ds))
	}

	// The sandbox default of the second app.
	other, err := f.svc.Register(ctx, Registration{Account: "bob@example.com", DeviceID: "dev2", VoIPToken: voipToken, BundleID: "com.example.other"})
	if err != nil || other.Environment != "sandbox" {
		t.Errorf("second app: %+v %v", other, err)
	}
	f.register(t, "bob@example.com", "x", "dev3", voipToken, "")
	if _, err := f.svc.Register(ctx, Registration{Account: "bob@example.com", DeviceID: "dev4", VoIPToken: voipToken}); !errors.Is(err, ErrTooManyDevices) {
		t.Errorf("fourth device: %v, want ErrTooManyDevices", err)
	}

	if err := f.svc.Unregister(ctx, "bob@example.com", "dev1"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.byNode(t, d.Node); ok {
		t.Errorf("node of an unregistered device still found")
	}
	if err := f.svc.Unregister(ctx, "bob@example.com", "dev1"); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("unregister twice: %v", err)
	}
}

func TestProposeWaking(t *testing.T) {
	f := newFixture(t, nil)
	f.register(t, "bob@example.com", "phone", "dev1", voipToken, alertToken)

	// Unknown presence: woken at once, with the contract's VoIP headers.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	got := f.push.take()
	if kinds(got) != "voip:dev1" {
		t.Fatalf("pushes %s, want voip:dev1", kinds(got))
	}
	// What the push carries of it is pushnotify's (TestWakeNotification).
	w := got[0].Wake
	if got[0].Token != voipToken || w.Kind != WakeVoIP || w.Why != WhyPresence || w.Device.BundleID != "com.example.chat" {
		t.Errorf("wake %+v", w)
	}
	c := w.Call
	if c.Account != "bob@example.com" || c.ID != "c1" || c.From != "alice@example.com/pc" || c.Caller != "alice@example.com" ||
		!c.Created.Equal(f.clock.Now()) || !c.Deadline.Equal(f.clock.Now().Add(45*time.Second)) || len(c.Media) != 1 {
		t.Errorf("call %+v", c)
	}

	// The same propose again (a second copy, another process): nothing.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	if got := f.push.take(); len(got) != 0 {
		t.Errorf("duplicate propose pushed %s", kinds(got))
	}

	// Available: no push; the undeliverable copy wakes it (the hibernated phone).
	f.presence(t, "bob@example.com/phone", "")
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c2", nil)
	if got := f.push.take(); len(got) != 0 {
		t.Errorf("online bob got %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c2", undeliverable)
	if got := f.push.take(); kinds(got) != "voip:dev1" {
		t.Errorf("undeliverable copy: %s", kinds(got))
	}

	// Unavailable again: woken.
	f.presence(t, "bob@example.com/phone", "unavailable")
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c3", nil)
	if got := f.push.take(); kinds(got) != "voip:dev1" {
		t.Errorf("after unavailable: %s", kinds(got))
	}

	// A stale copy (Prosody re-forwarding on hibernation end) never rings.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c4", func(ev *jingle.CallEvent) {
		ev.Delay = f.clock.Now().Add(-31 * time.Second)
	})
	if got := f.push.take(); len(got) != 0 {
		t.Errorf("stale propose pushed %s", kinds(got))
	}
	// A fresh delay is fine.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c5", func(ev *jingle.CallEvent) {
		ev.Delay = f.clock.Now().Add(-3 * time.Second)
	})
	if got := f.push.take(); kinds(got) != "voip:dev1" {
		t.Errorf("slightly delayed propose: %s", kinds(got))
	}

	// Foreign callee: refused.
	err := f.svc.Call(context.Background(), jingle.CallEvent{Action: jingle.ActionPropose, ID: "x",
		From: mustJID(t, "alice@example.com/pc"), To: mustJID(t, "eve@evil.example")})
	if !errors.Is(err, ErrForeignDomain) {
		t.Errorf("foreign callee: %v", err)
	}
}

func TestTwoDevicesAndAlertOnly(t *testing.T) {
	f := newFixture(t, nil)
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.register(t, "bob@example.com", "pad", "ipad", "", alertToken)
	f.presence(t, "bob@example.com/pad", "")

	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("first copy: %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	got := f.push.take()
	if kinds(got) != "alert:ipad" {
		t.Fatalf("undeliverable copy: %s", kinds(got))
	}
	if w := got[0].Wake; got[0].Token != alertToken || w.Kind != WakeAlert || w.Device.BundleID != "com.example.chat" ||
		w.Call.Caller != "alice@example.com" || w.Call.ID != "c1" {
		t.Errorf("incoming alert %+v", w)
	}

	// The caller gives up: both get the missed-call alert on the regular
	// token, the iPad's replacing its incoming alert (same collapse id).
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c1", nil)
	got = f.push.take()
	if len(got) != 2 {
		t.Fatalf("retract: %s", kinds(got))
	}
	for _, d := range got {
		if d.End == nil || d.Token != alertToken || d.End.State != EndCancelled || !d.End.State.Unanswered() ||
			d.End.Call.Caller != "alice@example.com" || d.End.Call.ID != "c1" {
			t.Errorf("missed alert %+v", d)
		}
	}
	// No second VoIP push after the end, whatever comes.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); len(got) != 0 {
		t.Errorf("after the end: %s", kinds(got))
	}
}

// A call push asks, before each retry, whether its call still rings: yes
// while it rings, no once it ended (here or in another process: the
// answer comes from Redis) or its keys expired. Pushes about the end ask
// nothing.
func TestCallPushWantedWhileRinging(t *testing.T) {
	f := newFixture(t, nil)
	f.push.store = nil // the pushes wait for a retry: none is delivered
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.register(t, "bob@example.com", "pad", "ipad", "", alertToken)

	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	wakes := f.push.take()
	if k := kinds(wakes); k != "alert:ipad,voip:iphone" && k != "voip:iphone,alert:ipad" {
		t.Fatalf("propose: %s", kinds(wakes))
	}
	ringing := func(d decision) bool {
		t.Helper()
		ok, err := f.store.WakeWanted(ctx, d.Wake.Key())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, d := range wakes {
		if !ringing(d) {
			t.Fatalf("%s push of a ringing call: not wanted", d.Kind)
		}
	}

	// Another process ends the call: its own Service, same Redis.
	other := NewService(f.store, &recorder{store: f.store}, nil, f.svc.cfg, nil, nil)
	ev := jingle.CallEvent{
		Action: jingle.ActionRetract, ID: "c1", From: mustJID(t, "alice@example.com/pc"), To: mustJID(t, "bob@example.com"),
		Wrapper: jingle.Wrapper{From: mustJID(t, "example.com"), To: mustJID(t, "push.example.com")},
	}
	if err := other.Call(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for _, d := range wakes {
		if ringing(d) {
			t.Errorf("%s push of a retracted call: still wanted", d.Kind)
		}
	}

	// A call whose keys are gone is not ringing either.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c2", nil)
	wakes = f.push.take()
	if len(wakes) == 0 {
		t.Fatal("no push for c2")
	}
	if err := f.rdb.Del(ctx, f.store.keys.call("bob@example.com", callRef("alice@example.com", "c2"))).Err(); err != nil {
		t.Fatal(err)
	}
	if ringing(wakes[0]) {
		t.Error("push of an expired call: still wanted")
	}

	// Redis down: sessions cannot tell, and says so (pushnotify then
	// retries: TestStillRingingUnknownRetries).
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c3", nil)
	wakes = f.push.take()
	f.rdb.Close()
	if _, err := f.store.WakeWanted(ctx, wakes[0].Wake.Key()); err == nil {
		t.Error("Redis unreachable: WakeWanted answered without an error")
	}
}

func TestAnsweredAndDeclinedElsewhere(t *testing.T) {
	f := newFixture(t, nil)
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.register(t, "bob@example.com", "desk", "mac", strings.Replace(voipToken, "aaaa", "cccc", 1), strings.Replace(alertToken, "bbbb", "dddd", 1))

	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); len(got) != 2 {
		t.Fatalf("propose: %s", kinds(got))
	}
	// bob answers on the mac: only the iphone hears of it.
	f.call(t, jingle.ActionProceed, "bob@example.com/desk", "alice@example.com/pc", "c1", nil)
	got := f.push.take()
	if kinds(got) != "background:iphone" || got[0].End.State != EndAnswered || got[0].Token != alertToken {
		t.Fatalf("answered elsewhere: %s %+v", kinds(got), got[0].End)
	}

	// XEP-0353 accept to the callee's own bare JID, then reject.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c2", nil)
	f.push.take()
	f.call(t, jingle.ActionReject, "bob@example.com/desk", "bob@example.com", "c2", nil)
	if got := f.push.take(); kinds(got) != "background:iphone" || got[0].End.State != EndDeclined {
		t.Fatalf("declined elsewhere: %s", kinds(got))
	}
	// Ended calls stay ended.
	f.call(t, jingle.ActionProceed, "bob@example.com/desk", "alice@example.com/pc", "c2", nil)
	if got := f.push.take(); len(got) != 0 {
		t.Errorf("late proceed: %s", kinds(got))
	}
}

func TestRingTimeout(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.push.take()

	f.clock.add(44 * time.Second)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("before the deadline: %s", kinds(got))
	}
	f.clock.add(2 * time.Second)
	// Two processes fire the same timer: one missed-call alert.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); f.svc.FireTimers(ctx) }()
	}
	wg.Wait()
	got := f.push.take()
	if kinds(got) != "alert:iphone" || got[0].End.State != EndMissed || got[0].End.Call.Caller != "alice@example.com" {
		t.Fatalf("timeout: %s", kinds(got))
	}
	if n := f.timers(t, "bob@example.com"); n != 0 {
		t.Errorf("%d timers left", n)
	}
	// Every key of the call expires.
	keys, _ := f.rdb.Keys(ctx, "test:*").Result()
	for _, k := range keys {
		if ttl, _ := f.rdb.PTTL(ctx, k).Result(); ttl < 0 {
			t.Errorf("key %s has no TTL", k)
		}
	}
}

func TestConcurrentDuplicates(t *testing.T) {
	f := newFixture(t, nil)
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	f.register(t, "bob@example.com", "pad", "ipad", strings.Replace(voipToken, "aaaa", "cccc", 1), "")
	// Copies of one propose raced by many processes: one push per device.
	for i := range 20 {
		id := "c" + string(rune('a'+i))
		var wg sync.WaitGroup
		for j := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mod := func(*jingle.CallEvent) {}
				if j%2 == 0 {
					mod = undeliverable
				}
				f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", id, mod)
			}()
		}
		wg.Wait()
		if got := f.push.take(); len(got) != 2 {
			t.Fatalf("call %s: %s", id, kinds(got))
		}
	}
}

func TestPublish(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	bob := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.presence(t, "bob@example.com/phone", "") // hibernated: still available

	// Publish before the propose: no message alert, and the propose wakes
	// the device (condition 3).
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	f.clock.add(100 * time.Millisecond)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("publish then propose: %s", kinds(got))
	}
	f.clock.add(3 * time.Second)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("the held message of a call's publish was sent: %s", kinds(got))
	}

	// Propose then publish.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c2", nil)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("available bob, no publish yet: %s", kinds(got))
	}
	f.clock.add(time.Second)
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("propose then publish: %s", kinds(got))
	}
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c2", nil)
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.push.take()

	// No call: a message alert after the hold, once for two publishes.
	f.clock.add(time.Minute)
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("message before the hold ended: %s", kinds(got))
	}
	f.clock.add(2 * time.Second)
	f.svc.FireTimers(ctx)
	got := f.push.take()
	if kinds(got) != "alert:iphone" || got[0].Token != alertToken || got[0].Message == nil || got[0].Message.Body != "New Message!" {
		t.Fatalf("message alert: %s", kinds(got))
	}

	// Wrong secret, unknown node, another server.
	if err := f.publish(t, bob, "nope"); !errors.Is(err, ErrForbidden) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := f.publish(t, Device{Node: "nope"}, ""); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown node: %v", err)
	}
	err := f.svc.Publish(ctx, mustJID(t, "evil.example"), jingle.Publish{Node: bob.Node,
		Options: jingle.Form{Fields: map[string][]string{"secret": {bob.Secret}}}})
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("other server: %v", err)
	}
}

// TestEmptyPublish: ejabberd publishes an empty <notification/> for any
// stanza that reaches a hibernated session, and Prosody one without a body
// for a chat state. Neither is a message: no alert, held or not; but it
// still pairs with a call (condition 3).
func TestEmptyPublish(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	bob := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.presence(t, "bob@example.com/phone", "")
	publish := func(s jingle.Summary, encrypted bool) {
		t.Helper()
		err := f.svc.Publish(ctx, mustJID(t, "example.com"), jingle.Publish{Node: bob.Node, Summary: s, Encrypted: encrypted,
			Options: jingle.Form{Fields: map[string][]string{"secret": {bob.Secret}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	publish(jingle.Summary{}, false)                // ejabberd: a presence, a receipt...
	publish(jingle.Summary{MessageCount: 1}, false) // Prosody: a chat state
	f.clock.add(3 * time.Second)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("empty publishes made pushes: %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("propose after an empty publish: %s", kinds(got))
	}
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.push.take()

	// A sender alone, or an encrypted payload, is a message.
	f.clock.add(time.Minute)
	publish(jingle.Summary{Sender: "alice@example.com"}, false)
	f.clock.add(3 * time.Second)
	f.svc.FireTimers(ctx)
	publish(jingle.Summary{}, true)
	f.clock.add(3 * time.Second)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); kinds(got) != "alert:iphone,alert:iphone" {
		t.Fatalf("sender-only and encrypted publishes: %s", kinds(got))
	}
}

// TestPublishRacingPropose: a publish and the copy of its propose arrive
// milliseconds apart and run on different workers, in either order. Each
// script sees the other's work or none of it, never half: the call rings
// once, and the publish never becomes a message alert.
func TestPublishRacingPropose(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	bob := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.presence(t, "bob@example.com/phone", "") // hibernated: still available
	for i := range 40 {
		id := "c" + strconv.Itoa(i)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", id, nil)
		}()
		go func() {
			defer wg.Done()
			if err := f.publish(t, bob, bob.Secret); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if got := f.push.take(); kinds(got) != "voip:iphone" {
			t.Fatalf("call %s with its publish: %s", id, kinds(got))
		}
		f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", id, nil)
		f.push.take()
		f.clock.add(f.svc.cfg.PublishWindow + time.Second) // the next call is a new one
		f.svc.FireTimers(ctx)
		if got := f.push.take(); len(got) != 0 {
			t.Fatalf("call %s: its publish became %s", id, kinds(got))
		}
	}
}

// TestPublishAfterItsCallEnded: Prosody publishes for a propose queued for a
// hibernated session a second late (mod_cloud_notify batches that queue's
// publishes), with the same "New Message!" body as for a message. A call
// that ended within that second (declined elsewhere, retracted, a
// tie-break) still owns the publish: no message alert. A publish later than
// the publish hold after the call started is a message again.
func TestPublishAfterItsCallEnded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.WakeOnPublish = false })
	ctx := context.Background()
	bob := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.presence(t, "bob@example.com/phone", "") // hibernated: still available
	for _, end := range []struct {
		action   jingle.Action
		from, to string
	}{
		{jingle.ActionReject, "bob@example.com/laptop", "alice@example.com/pc"},
		{jingle.ActionRetract, "alice@example.com/pc", "bob@example.com"},
	} {
		id := "c-" + string(end.action)
		f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", id, undeliverable)
		f.call(t, end.action, end.from, end.to, id, nil)
		if got := f.push.take(); len(got) != 2 {
			t.Fatalf("%s: %s", id, kinds(got))
		}
		f.clock.add(time.Second)
		if err := f.publish(t, bob, bob.Secret); err != nil {
			t.Fatal(err)
		}
		f.clock.add(3 * time.Second)
		f.svc.FireTimers(ctx)
		if got := f.push.take(); len(got) != 0 {
			t.Fatalf("%s: the late publish of its propose became %s", id, kinds(got))
		}
		f.clock.add(f.svc.cfg.PublishWindow)
	}

	// A message a little after a call that ended is a message.
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c3", undeliverable)
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c3", nil)
	f.push.take()
	f.clock.add(f.svc.cfg.PublishHold + time.Second)
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	f.clock.add(3 * time.Second)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); kinds(got) != "alert:iphone" || got[0].Message == nil {
		t.Fatalf("a message after the call: %s", kinds(got))
	}
}

// TestPublishBeforeItsPropose: the caller hangs up and calls again at
// once, and the new call's publish reaches jinglepush before its propose
// (two workers, two stanzas). The publish matches the call that has just
// ended, but it woke nothing: it still counts for the propose that follows,
// and the new call rings.
func TestPublishBeforeItsPropose(t *testing.T) {
	f := newFixture(t, nil)
	bob := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.presence(t, "bob@example.com/phone", "") // hibernated: still available
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("the first call: %s", kinds(got))
	}
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.push.take()

	f.clock.add(500 * time.Millisecond)
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("the second call's publish, alone: %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c2", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("the second call, its publish first: %s", kinds(got))
	}
}

// TestHeldMessageClaimedInRedisOrder: a publish is recorded (and held),
// then a propose creates its call; the propose's worker took its time a
// little before the publish's did. The held message still belonged to the
// call: no alert.
func TestHeldMessageClaimedInRedisOrder(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.WakeOnPublish = false })
	ctx := context.Background()
	bob := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.presence(t, "bob@example.com/phone", "") // available: the propose alone wakes nothing
	f.clock.add(10 * time.Millisecond)
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	f.clock.add(-10 * time.Millisecond)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.clock.add(3 * time.Second)
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("a publish recorded just before a call became: %s", kinds(got))
	}
}

func TestWakeOnPublishOff(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.WakeOnPublish = false })
	bob := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.presence(t, "bob@example.com/phone", "")
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if err := f.publish(t, bob, bob.Secret); err != nil {
		t.Fatal(err)
	}
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("wake_on_publish off: %s", kinds(got))
	}
	// A publish marked as a call by the server still counts.
	err := f.svc.Publish(context.Background(), mustJID(t, "example.com"), jingle.Publish{Node: bob.Node, VoIP: true, Encrypted: true,
		Options: jingle.Form{Fields: map[string][]string{"secret": {bob.Secret}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("voip-marked publish: %s", kinds(got))
	}
}

func TestDeadTokenAndRequeue(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	d := f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	dead := func(token string, since time.Time) bool {
		t.Helper()
		removed, err := f.store.TokenDead(ctx, DeadToken{Account: "bob@example.com", DeviceID: "iphone", Token: token, InvalidSince: since})
		if err != nil {
			t.Fatal(err)
		}
		return removed
	}
	// APNs found the token invalid before the device registered it (again):
	// Apple counts it valid, so it stays.
	if dead(voipToken, f.clock.Now().Add(-time.Minute)) {
		t.Fatal("a token registered after APNs found it invalid was removed")
	}
	if _, kept, _ := f.byNode(t, d.Node); kept.VoIPToken != voipToken {
		t.Fatalf("after a stale 410: %+v", kept)
	}
	// Invalid since after the registration, or no time given: removed.
	if !dead(voipToken, f.clock.Now().Add(time.Second)) {
		t.Fatal("a token APNs found invalid after its registration was kept")
	}
	_, left, ok := f.byNode(t, d.Node)
	if !ok || left.VoIPToken != "" || left.Token != alertToken {
		t.Fatalf("after removing the VoIP token: %+v %v", left, ok)
	}
	if !dead(alertToken, time.Time{}) {
		t.Fatal("the alert token was kept")
	}
	if dead(alertToken, time.Time{}) {
		t.Error("a token already gone was removed again")
	}
	if _, _, ok := f.byNode(t, d.Node); ok {
		t.Fatalf("a device with no token left is still there")
	}

	// A push the sender refuses is tried again at the next timer poll,
	// with or without a later copy of the propose.
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	f.push.fail = errors.New("queue full")
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.push.fail = nil
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("a later copy rang a wake that is taken: %s", kinds(got))
	}
	f.svc.FireTimers(ctx)
	if got := f.push.take(); kinds(got) != "voip:iphone" || got[0].Wake.Why != WhyTakeover {
		t.Fatalf("retry after a full queue: %s", kinds(got))
	}
	f.svc.FireTimers(ctx)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("a delivered wake rang again: %s", kinds(got))
	}
}

func TestFailOpen(t *testing.T) {
	f := newFixture(t, nil)
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	f.presence(t, "bob@example.com/phone", "")
	// A first call fills the cache (bob online: no push).
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c0", nil)
	f.rdb.Close() // Redis is gone
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("fail open: %s", kinds(got))
	}
}

// Only one-to-one calls ring; a migrated call and a tie-break end
// without a missed-call alert (XEP-0353 0.8.0); a <ringing/> from the
// woken device is measured from its push.
func TestSignalsOfXEP0353(t *testing.T) {
	f := newFixture(t, nil)
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	typed := func(typ string) func(*jingle.CallEvent) { return func(ev *jingle.CallEvent) { ev.MessageType = typ } }

	for _, typ := range []string{"groupchat", "headline"} {
		f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "g-"+typ, typed(typ))
		if got := f.push.take(); len(got) != 0 {
			t.Errorf("a %s propose rang: %s", typ, kinds(got))
		}
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "chat", typed("chat"))
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("a chat propose: %s", kinds(got))
	}

	// The caller moves the call to a new session: the old one ends
	// quietly, the new one rings as a new call.
	f.call(t, jingle.ActionFinish, "alice@example.com/pc", "bob@example.com", "chat", func(ev *jingle.CallEvent) { ev.MigratedTo = "chat2" })
	got := f.push.take()
	if kinds(got) != "background:iphone" || got[0].End.State != EndMigrated {
		t.Fatalf("finish with migrated: %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "chat2", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("the migrated call's new session: %s", kinds(got))
	}

	// The woken phone rings: counted once, after the push.
	f.clock.add(1500 * time.Millisecond)
	f.call(t, jingle.ActionRinging, "bob@example.com/phone", "alice@example.com/pc", "chat2", nil)
	f.call(t, jingle.ActionRinging, "bob@example.com/phone", "alice@example.com/pc", "chat2", nil)
	if n := testutil.CollectAndCount(f.svc.m.pushToRinging); n != 1 {
		t.Errorf("%d push-to-ringing series", n)
	}
	if v := testutil.ToFloat64(f.svc.m.calls.WithLabelValues("ringing", "after_push")); v != 1 {
		t.Errorf("ringing after a push counted %v times, want 1", v)
	}

	// Crossing proposes: the caller's tie-break retract is no missed call.
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "chat2", func(ev *jingle.CallEvent) { ev.TieBreak = true })
	if got := f.push.take(); kinds(got) != "background:iphone" || got[0].End.State != EndTieBreak {
		t.Fatalf("tie-break retract: %s", kinds(got))
	}
	// ... nor is the callee's tie-break reject.
	f.call(t, jingle.ActionPropose, "carol@example.com/pc", "bob@example.com", "c3", nil)
	f.push.take()
	f.call(t, jingle.ActionReject, "bob@example.com/desk", "carol@example.com/pc", "c3", func(ev *jingle.CallEvent) { ev.TieBreak = true })
	if got := f.push.take(); kinds(got) != "background:iphone" || got[0].End.State != EndTieBreak {
		t.Fatalf("tie-break reject: %s", kinds(got))
	}
}
