package main

// Several jinglepush processes, and Redis Cluster and Sentinel under them
// (issue 15): processes that share a server's stanzas or wait as a hot
// standby, accounts whose names would break a naive hash tag, and the
// Redis master failing over while calls ring.

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/pushnotify"
	"github.com/jinglepush/jinglepush/sessions"
)

// noCallLimits turns off the limits on how often one caller may call one
// callee: the tests below call the same user many times a minute.
const noCallLimits = "caller_callee_per_minute = 0\ncaller_per_minute = 0"

// family sums the samples of metric name whose labels hold every one of
// labels (`action="propose"`), over the running processes of s.
func (s *stack) family(name string, labels ...string) float64 {
	s.t.Helper()
	var sum float64
	for _, p := range s.processes() {
		sum += p.familyOf(name, labels...)
	}
	return sum
}

// familyOf is family for one process.
func (s *stack) familyOf(name string, labels ...string) float64 {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		sp := strings.LastIndexByte(rest, ' ')
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest[:sp], l)
		}
		if v, err := strconv.ParseFloat(rest[sp+1:], 64); err == nil && match {
			sum += v
		}
	}
	return sum
}

// waitFamily waits until family(name, labels...) reaches want.
func (s *stack) waitFamily(want float64, name string, labels ...string) {
	s.t.Helper()
	testenv.Eventually(s.t, waitShort, func() bool { return s.family(name, labels...) >= want }, "%s%v >= %v", name, labels, want)
}

// pushesOf sorts pushes by call id and kind: "voip", "alert:missed"...
func pushesOf(t *testing.T, got []testenv.Request) map[string]map[string]int {
	t.Helper()
	out := make(map[string]map[string]int)
	for _, r := range got {
		b := body(t, r)
		kind := r.Header.Get("apns-push-type")
		if b.Event != "" {
			kind += ":" + b.Event
		}
		if out[b.Call.ID] == nil {
			out[b.Call.ID] = make(map[string]int)
		}
		out[b.Call.ID][kind]++
	}
	return out
}

// TestTwoProcessesShareEjabberd: ejabberd spreads a component's stanzas
// over all the connections of that component, picking one at random for
// each stanza, so two processes connected as the same component share the
// work, and the two copies of a propose (from the caller's session and
// the callee's) often reach different processes. Each call still rings
// the phone once, and its missed-call alert goes out once, whether the
// caller ends it or the ring timeout does (the timers of both processes
// poll every bucket; the claim hands each due timer to one). On the
// Redis Cluster.
func TestTwoProcessesShareEjabberd(t *testing.T) {
	srv := newServers(t, "ejabberd", onCluster)
	s := newStack(t, srv, stackOptions{ringTimeout: 3 * time.Second, callsTOML: noCallLimits})
	peer := s.newPeer(false)
	bob, alice, ac, d := s.hibernatedCallee()

	const proposeLabel = `action="propose"`
	proposes := func(p *stack) float64 { return p.familyOf("jinglepush_calls_events_total", proposeLabel) }
	var ids []string
	split := 0
	// Calls the caller ends, until the copies of one reached both
	// processes (each copy goes either way: twelve calls all kept
	// together would be one run in 2^12).
	for i := 0; i < 12 && (split == 0 || i < 3); i++ {
		id := uuid.NewString()
		ids = append(ids, id)
		a0, b0 := proposes(s), proposes(peer)
		send(t, ac, propose(bob, id))
		s.waitFamily(float64(2*len(ids)), "jinglepush_calls_events_total", proposeLabel) // both copies handled
		if proposes(s) > a0 && proposes(peer) > b0 {
			split++
		}
		s.apns.Wait(t, 2*len(ids)-1, waitShort)
		send(t, ac, jmi("retract", bob, id))
		s.apns.Wait(t, 2*len(ids), waitShort)
	}
	if split == 0 {
		t.Fatalf("in %d calls, the copies of no call reached both processes", len(ids))
	}
	// One call left to ring out.
	last := uuid.NewString()
	send(t, ac, propose(bob, last))
	s.waitFamily(float64(2*len(ids)+2), "jinglepush_calls_events_total", proposeLabel)
	s.waitFamily(1, "jinglepush_calls_events_total", `action="timeout"`, `outcome="missed"`)
	got := s.pushes(2*len(ids) + 2)

	byCall := pushesOf(t, got)
	for _, id := range append(ids, last) {
		if k := byCall[id]; len(k) != 2 || k["voip"] != 1 || k["alert:missed"] != 1 {
			t.Errorf("call %s: pushes %v, want one voip and one missed-call alert", id, k)
		}
	}
	for _, r := range got {
		if tok := r.Token; tok != d.voip && tok != d.token {
			t.Errorf("push to %s", tok)
		}
	}
	if b := body(t, got[len(got)-1]); b.Event != "missed" || b.Call.Caller != alice {
		t.Errorf("last push %s", got[len(got)-1].Body)
	}
	for _, p := range []*stack{s, peer} {
		if n := p.metric(`jinglepush_component_stanzas_total{kind="call"}`); n == 0 {
			t.Errorf("%s handled no call stanza", p.http)
		}
		if n := p.metric(`jinglepush_component_connections_total{result="connected"}`); n != 1 {
			t.Errorf("%s connected %v times", p.http, n)
		}
	}
	t.Logf("%d calls, the copies of %d of them split between the processes; ring timeout fired by %v and %v",
		len(ids)+1, split,
		s.metric(`jinglepush_calls_events_total{action="timeout",outcome="missed"}`),
		peer.metric(`jinglepush_calls_events_total{action="timeout",outcome="missed"}`))
}

// TestHotStandbyOnProsody: Prosody takes one connection per component, so
// a second process is turned away and keeps retrying (xmpp.reconnect_min
// and _max). Killed mid-call, the active process's connection drops, the
// standby's next attempt gets in, and the call it never saw begin still
// ends with its missed-call alert, from its timers. The time from the kill
// to the standby being ready is logged: the takeover an operator gets is
// about xmpp.reconnect_max at most (500ms here).
func TestHotStandbyOnProsody(t *testing.T) {
	srv := newServers(t, "prosody", onSingle)
	s := newStack(t, srv, stackOptions{process: true, ringTimeout: 6 * time.Second})
	standby := s.newPeer(true)
	bob, alice, ac, d := s.hibernatedCallee()
	id := uuid.NewString()
	send(t, ac, propose(bob, id))
	if r := s.apns.Wait(t, 1, waitShort)[0]; r.Token != d.voip || body(t, r).Call.ID != id {
		t.Fatalf("push %s to %s", r.Body, r.Token)
	}
	// Killed once the push is recorded as delivered (see the restart
	// scenario of TestCallLifecycle).
	s.waitMetric(`jinglepush_calls_wakes_settled_total{outcome="delivered"}`, 1)
	if n := standby.metric(`jinglepush_component_connections_total{result="connected"}`); n != 0 {
		t.Fatalf("the standby connected %v times while the active process ran", n)
	}

	killed := time.Now()
	s.kill()
	standby.waitReady()
	took := time.Since(killed)
	t.Logf("standby ready %v after the active process was killed (turned away %v times before)",
		took.Round(time.Millisecond), standby.metric(`jinglepush_component_connections_total{result="standby"}`))

	got := s.apns.Wait(t, 2, waitShort)
	checkAlert(t, got[1], d.token, id, "missed", "Missed call from "+alice)
	standby.waitMetric(`jinglepush_calls_events_total{action="timeout",outcome="missed"}`, 1)
	s.pushes(2)

	// The standby now serves new calls.
	id2 := uuid.NewString()
	send(t, ac, propose(bob, id2))
	if r := s.pushes(3)[2]; r.Token != d.voip || body(t, r).Call.UUID != pushnotify.CallUUID(alice, id2) {
		t.Errorf("push after the takeover: %s", r.Body)
	}
}

// oddLocalparts are account names that would break a hash tag taken from
// the account: a '}' first (Redis would hash the text between the key's
// first '{' and the next '}'), braces inside, one that looks like
// jinglepush's own tags, non-ASCII, and one over 1000 bytes.
var oddLocalparts = []string{
	"}bob",
	"}{",
	"a{b}c",
	"{b00}x",
	"jörg-李-ünïcødé",
	strings.Repeat("long", 254) + "-",
}

// TestOddAccountsOnCluster: every key of an account lands in one slot of
// the Redis Cluster, whatever its name: a call to each account above rings
// and ends (a script that touched two slots would fail with CROSSSLOT),
// and the keys that name each account share one slot with the hash that
// holds its devices.
func TestOddAccountsOnCluster(t *testing.T) {
	forEachServerOn(t, onCluster, func(t *testing.T, srv *servers) {
		s := newStack(t, srv, stackOptions{callsTOML: noCallLimits})
		alice := s.user("alice")
		ac := s.login(alice, "pc", false)
		n := 0
		for _, local := range oddLocalparts {
			if len(local) > 200 && srv.xmpp.Info().Software == "prosody" {
				// Prosody's file storage names a file after the account: a
				// name must fit in 255 bytes. ejabberd takes 1023.
				local = local[:200]
			}
			callee := s.user(local)
			bc := s.login(callee, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			if err := bc.Close(); err != nil {
				t.Fatal(err)
			}
			id := uuid.NewString()
			send(t, ac, propose(callee, id))
			n++
			if r := s.apns.Wait(t, 2*n-1, waitShort)[2*n-2]; r.Token != d.voip || body(t, r).Account != callee {
				t.Fatalf("%q: push %s to %s", local, r.Body, r.Token)
			}
			send(t, ac, jmi("retract", callee, id))
			r := s.pushes(2 * n)[2*n-1]
			checkAlert(t, r, d.token, id, "missed", "Missed call from "+alice)
			checkSlots(t, srv.cluster, s.prefix, callee)
		}
	})
}

// forEachServerOn is forEachServer with the Redis of kind.
func forEachServerOn(t *testing.T, kind string, f func(t *testing.T, srv *servers)) {
	for _, software := range []string{"prosody", "ejabberd"} {
		t.Run(software, func(t *testing.T) { f(t, newServers(t, software, kind)) })
	}
}

// checkSlots checks that the keys under prefix that name account, and the
// devices hash that holds it, are in one slot of c.
func checkSlots(t *testing.T, c *testenv.RedisCluster, prefix, account string) {
	t.Helper()
	ctx := context.Background()
	slots := map[int][]string{}
	for _, m := range c.Masters(t) {
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr})
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			named := strings.Contains(key, account)
			if !named && strings.Contains(key, "}:d:") {
				named, _ = rdb.HExists(ctx, key, account).Result()
			}
			if named {
				slot := c.Slot(t, key)
				slots[slot] = append(slots[slot], key)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatalf("scan %s: %v", m.Addr, err)
		}
		rdb.Close()
	}
	n := 0
	for _, keys := range slots {
		n += len(keys)
	}
	if len(slots) != 1 || n < 3 {
		short := func(k string) string {
			if len(k) > 80 {
				return k[:40] + "…" + k[len(k)-30:]
			}
			return k
		}
		for slot, keys := range slots {
			for _, k := range keys {
				t.Logf("slot %d: %s", slot, short(k))
			}
		}
		t.Errorf("%.40q: %d keys in %d slots, want them all in one", account, n, len(slots))
	}
}

// told is a sessions.Notifier that keeps what it is told and reports each
// wake delivered, as pushnotify does once APNs took the push.
type told struct {
	store *sessions.Store
	mu    sync.Mutex
	wakes []sessions.Wake
	ends  []sessions.CallEnd
}

func (n *told) Wake(_ context.Context, w sessions.Wake) error {
	n.mu.Lock()
	n.wakes = append(n.wakes, w)
	n.mu.Unlock()
	k := w.Key()
	n.store.Pushed(sessions.PushReport{Wake: &k, Call: k.Call, DeviceID: w.Device.ID, Kind: string(w.Kind), Result: "success", Status: 200, Attempts: 1, Final: true})
	return nil
}

func (n *told) CallEnded(_ context.Context, e sessions.CallEnd) error {
	n.mu.Lock()
	n.ends = append(n.ends, e)
	n.mu.Unlock()
	return nil
}

func (n *told) Message(context.Context, sessions.Message) error { return nil }

// ended returns the calls that ended so far, by id.
func (n *told) ended() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for _, e := range n.ends {
		out[e.Call.ID]++
	}
	return out
}

// gathered sums the samples of metric name in reg whose labels hold
// every name=value pair of labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == labels[i] && l.GetValue() == labels[i+1] }) {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// scanKeys returns the keys of the cluster's masters that match pattern.
func scanKeys(t *testing.T, c *testenv.RedisCluster, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for _, m := range c.Masters(t) {
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr})
		k, err := scanAll(ctx, rdb, pattern)
		rdb.Close()
		if err != nil {
			t.Fatalf("scan %s: %v", m.Addr, err)
		}
		keys = append(keys, k...)
	}
	return keys
}

func scanAll(ctx context.Context, rdb *redis.Client, pattern string) ([]string, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// TestPoisonedTimerOnCluster: a ring timeout whose script fails every
// time (its call's hash was overwritten by a string: WRONGTYPE) is
// retried a few times, counted, logged once and parked; the ring timeouts
// beside it, in its bucket and in others, fire all along, and a timer
// member no version reads is dropped. The sessions API on the cluster,
// through the client jinglepush builds, with a clock the test moves.
func TestPoisonedTimerOnCluster(t *testing.T) {
	c := sharedCluster.Get(t)
	ctx := context.Background()
	rdb := newRedisClient(RedisConfig{Addrs: c.Addrs(), DialTimeout: 2 * time.Second, Timeout: time.Second, ClusterRefresh: time.Second})
	t.Cleanup(func() { rdb.Close() })
	prefix := fmt.Sprintf("poison%d:", stackSeq.Add(1))
	store := sessions.NewStore(rdb, prefix, sessions.StoreOptions{})
	if err := store.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	clk := &testClock{now: time.Now().Truncate(time.Millisecond)}
	reg := prometheus.NewRegistry()
	n := &told{store: store}
	svc := sessions.NewService(store, n, nil, sessions.Config{
		ServedDomains: []string{"example.com"},
		Apps:          []sessions.App{{BundleID: bundleID, Environment: "production"}},
		RingTimeout:   45 * time.Second,
		Now:           clk.Now,
	}, slog.New(slog.NewTextHandler(&logs, nil)), reg)

	accounts := []string{"mallory@example.com", "bob@example.com", "carol@example.com", "}dave@example.com"}
	for i, a := range accounts {
		if _, err := svc.Register(ctx, sessions.Registration{Account: a, Resource: "phone", DeviceID: "iphone", VoIPToken: fmt.Sprintf("%064x", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	call := func(account, id string) {
		t.Helper()
		ev := jingle.CallEvent{
			Action: jingle.ActionPropose, ID: id, MessageType: "chat", Media: []string{"audio"},
			From: jid.MustParse("alice@example.com/pc"), To: jid.MustParse(account),
			Wrapper: jingle.Wrapper{From: jid.MustParse("example.com"), To: jid.MustParse("push.example.com")},
		}
		if err := svc.Call(ctx, ev); err != nil {
			t.Fatalf("call %s: %v", id, err)
		}
	}
	for i, a := range accounts {
		call(a, fmt.Sprintf("first-%d", i))
	}
	testenv.Eventually(t, waitShort, func() bool {
		return gathered(t, reg, "jinglepush_calls_wakes_settled_total", "outcome", "delivered") == float64(len(accounts))
	}, "every wake recorded delivered")

	// Poison mallory's call, and put a member no version reads among
	// bob's timers.
	poisoned := scanKeys(t, c, prefix+"*c:mallory@example.com/*")
	if len(poisoned) != 1 {
		t.Fatalf("mallory's call keys: %q", poisoned)
	}
	if err := rdb.Set(ctx, poisoned[0], "poison", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	var bobTimers string
	for _, k := range scanKeys(t, c, prefix+"*}:t") {
		if n, _ := rdb.ZScore(ctx, k, "c\nbob@example.com\nalice@example.com/first-1").Result(); n > 0 {
			bobTimers = k
		}
	}
	if bobTimers == "" {
		t.Fatal("no timers key holds bob's ring timeout")
	}
	if err := rdb.ZAdd(ctx, bobTimers, redis.Z{Score: 1, Member: "x\nnot a timer"}).Err(); err != nil {
		t.Fatal(err)
	}

	// Past the ring deadline: every call but mallory's ends, now.
	clk.add(46 * time.Second)
	svc.FireTimers(ctx)
	if got := n.ended(); len(got) != len(accounts)-1 || got["first-0"] != 0 {
		t.Fatalf("calls ended: %v", got)
	}
	// Each round, a new call rings and the one before it times out while
	// the poisoned timer keeps failing, until it is parked.
	for round := 0; gathered(t, reg, "jinglepush_timers_parked_total") < 2; round++ {
		if round == 10 {
			t.Fatalf("the poisoned timer is not parked after %d rounds: %v errors", round, gathered(t, reg, "jinglepush_timers_errors_total"))
		}
		id := fmt.Sprintf("round-%d", round)
		call("bob@example.com", id)
		clk.add(46 * time.Second) // past its deadline, and past the poisoned timer's claim
		svc.FireTimers(ctx)
		if got := n.ended(); got[id] != 1 {
			t.Fatalf("%s: ended %d times", id, got[id])
		}
	}
	if errs := gathered(t, reg, "jinglepush_timers_errors_total", "kind", "c"); errs != 5 {
		t.Errorf("%v failures of the poisoned timer, want 5 (then it is parked)", errs)
	}
	if got := n.ended(); got["first-0"] != 0 {
		t.Errorf("mallory's poisoned call ended")
	}
	if k := strings.Count(logs.String(), "a timer failed too often and is parked"); k != 1 {
		t.Errorf("parked logged %d times:\n%s", k, logs.String())
	}
	parked := strings.TrimSuffix(scanKeys(t, c, prefix+"*c:mallory@example.com/*")[0], "c:mallory@example.com/alice@example.com/first-0") + "tp"
	if members, err := rdb.ZRange(ctx, parked, 0, -1).Result(); err != nil || len(members) != 1 || !strings.Contains(members[0], "mallory") {
		t.Errorf("parked timers in %s: %q, %v", parked, members, err)
	}
	// Nothing is left to fire: no more errors, however long it waits.
	clk.add(time.Hour)
	before := gathered(t, reg, "jinglepush_timers_errors_total")
	svc.FireTimers(ctx)
	if after := gathered(t, reg, "jinglepush_timers_errors_total"); after != before {
		t.Errorf("timer errors went from %v to %v after parking", before, after)
	}
	for _, k := range scanKeys(t, c, prefix+"*}:t") {
		if n, _ := rdb.ZCard(ctx, k).Result(); n != 0 {
			members, _ := rdb.ZRange(ctx, k, 0, -1).Result()
			t.Errorf("%s still holds %q", k, members)
		}
	}
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestTimersGoOnWhileAMasterIsAway: the timer poll reads every bucket in
// one pipeline over the cluster's masters; with one master dead, the ring
// timeouts of the buckets on the others still fire, and those of the dead
// master's buckets fire once its replica has taken over.
func TestTimersGoOnWhileAMasterIsAway(t *testing.T) {
	c := sharedCluster.Get(t)
	ctx := context.Background()
	rdb := newRedisClient(RedisConfig{Addrs: c.Addrs(), DialTimeout: 2 * time.Second, Timeout: time.Second, ClusterRefresh: time.Second})
	t.Cleanup(func() { rdb.Close() })
	prefix := fmt.Sprintf("away%d:", stackSeq.Add(1))
	store := sessions.NewStore(rdb, prefix, sessions.StoreOptions{})
	if err := store.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	clk := &testClock{now: time.Now().Truncate(time.Millisecond)}
	reg := prometheus.NewRegistry()
	n := &told{store: store}
	svc := sessions.NewService(store, n, nil, sessions.Config{
		ServedDomains: []string{"example.com"},
		Apps:          []sessions.App{{BundleID: bundleID, Environment: "production"}},
		RingTimeout:   45 * time.Second,
		Now:           clk.Now,
	}, nil, reg)

	// Accounts until two are on different masters.
	var accounts []string
	var masters []*testenv.ClusterNode
	for i := 0; len(accounts) < 2; i++ {
		if i == 100 {
			t.Fatal("100 accounts on one master")
		}
		a := fmt.Sprintf("user%d@example.com", i)
		if _, err := svc.Register(ctx, sessions.Registration{Account: a, Resource: "phone", DeviceID: "iphone", VoIPToken: fmt.Sprintf("%064x", i+1)}); err != nil {
			t.Fatal(err)
		}
		m := c.MasterForKey(t, devicesKey(t, c, prefix, a))
		if len(masters) == 0 || masters[0] != m {
			accounts, masters = append(accounts, a), append(masters, m)
		}
	}
	for i, a := range accounts {
		ev := jingle.CallEvent{
			Action: jingle.ActionPropose, ID: fmt.Sprintf("call-%d", i), MessageType: "chat", Media: []string{"audio"},
			From: jid.MustParse("alice@example.com/pc"), To: jid.MustParse(a),
			Wrapper: jingle.Wrapper{From: jid.MustParse("example.com"), To: jid.MustParse("push.example.com")},
		}
		if err := svc.Call(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, waitShort, func() bool {
		return gathered(t, reg, "jinglepush_calls_wakes_settled_total", "outcome", "delivered") == 2
	}, "both wakes recorded delivered")
	waitReplicated(t, masters[0].Redis, []*testenv.Redis{c.ReplicasOf(t, masters[0])[0].Redis})

	masters[0].Kill()
	clk.add(46 * time.Second)
	svc.FireTimers(ctx)
	if got := n.ended(); got["call-1"] != 1 || got["call-0"] != 0 {
		t.Fatalf("with %s dead, calls ended: %v; want call-1 (on %s) only", masters[0].Addr, got, masters[1].Addr)
	}
	c.WaitHealthy(t) // the replica took over
	testenv.Eventually(t, waitShort, func() bool {
		svc.FireTimers(ctx)
		return n.ended()["call-0"] == 1
	}, "the dead master's ring timeout to fire on its replica")
	if got := n.ended(); got["call-0"] != 1 || got["call-1"] != 1 {
		t.Errorf("calls ended: %v, want each once", got)
	}
}
