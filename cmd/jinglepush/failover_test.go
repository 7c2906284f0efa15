package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// TestFailoverMidCall: the Redis master under ringing calls dies (SIGKILL,
// as in a crash) and a replica takes its place, on the cluster (the master
// of the first callee's slots) and on Sentinel. Calls that rang before go
// on and each ends with one missed-call alert; a retract sent while the
// master is gone may be lost, and that call then ends at its ring timeout;
// a call proposed meanwhile rings once, from the process's memory of the
// callee's devices (Redis is away longer than calls.fail_open_after), and
// ends once; duplicates after the failover ring nothing. The test logs
// what jinglepush logged and counted, and how long its Redis client could
// not write to the failed slots.
//
// Writes the master acknowledged but had not sent to its replica die with
// it (Redis replicates asynchronously): the test waits until the replica
// has everything before it kills the master, and docs/performance.md says
// what such a loss costs.
func TestFailoverMidCall(t *testing.T) {
	for _, kind := range []string{onCluster, onSentinel} {
		t.Run(kind, func(t *testing.T) { failoverMidCall(t, kind) })
	}
}

func failoverMidCall(t *testing.T, kind string) {
	srv := newServers(t, "prosody", kind)
	// Redis is away longer than fail_open_after: the call proposed
	// meanwhile rings from memory, and is recorded once Redis answers.
	s := newStack(t, srv, stackOptions{ringTimeout: 10 * time.Second, callsTOML: noCallLimits + "\nfail_open_after = \"500ms\""})
	alice, carol := s.user("alice"), s.user("carol")
	ac, cc := s.login(alice, "pc", false), s.login(carol, "pc", false)
	type callee struct {
		jid string
		d   device
	}
	var callees []callee
	for range 4 {
		bob := s.user("bob")
		bc := s.login(bob, "phone", false)
		d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
		if err := bc.Close(); err != nil {
			t.Fatal(err)
		}
		callees = append(callees, callee{bob, d})
	}

	// The master to kill, its replicas, and a key of the failed slots for
	// the probe.
	var master *testenv.Redis
	var replicas []*testenv.Redis
	var probeKey string
	switch kind {
	case onCluster:
		dkey := devicesKey(t, srv.cluster, s.prefix, callees[0].jid)
		m := srv.cluster.MasterForKey(t, dkey)
		master = m.Redis
		for _, r := range srv.cluster.ReplicasOf(t, m) {
			replicas = append(replicas, r.Redis)
		}
		probeKey = dkey[:strings.IndexByte(dkey, '}')+1] + ":failover-probe"
	case onSentinel:
		master, replicas = srv.sentinel.Master(t), srv.sentinel.Replicas(t)
		probeKey = s.prefix + "failover-probe"
	}

	// Calls A ring on every callee.
	ids := make([]string, len(callees))
	for i, c := range callees {
		ids[i] = uuid.NewString()
		send(t, ac, propose(c.jid, ids[i]))
	}
	s.apns.Wait(t, len(callees), waitShort)
	s.waitMetric(`jinglepush_calls_wakes_settled_total{outcome="delivered"}`, float64(len(callees)))
	waitReplicated(t, master, replicas)

	cfg, err := Load(s.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	probe := newProbe(cfg.Redis, probeKey)
	killed := time.Now()
	logFrom := len(s.logs())
	master.Kill()
	go probe.run(killed)

	// While the master is gone: alice hangs up A0, and carol calls the
	// same callee (B).
	send(t, ac, jmi("retract", callees[0].jid, ids[0]))
	callB := uuid.NewString()
	send(t, cc, propose(callees[0].jid, callB))

	switch kind {
	case onCluster:
		srv.cluster.WaitHealthy(t)
	case onSentinel:
		srv.sentinel.WaitNewMaster(t, master)
	}
	replaced := time.Since(killed)
	back, err := probe.wait(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: master %s killed; replica in its place after %v; jinglepush's client wrote to its slots again after %v",
		kind, master.Addr, replaced.Round(time.Millisecond), back.Round(time.Millisecond))

	// B rang once; duplicates of A2 and B ring nothing; A1 is hung up.
	s.apns.Wait(t, len(callees)+1, waitShort)
	dups := s.metric(`jinglepush_calls_events_total{action="propose",outcome="duplicate"}`)
	send(t, ac, propose(callees[2].jid, ids[2]))
	send(t, cc, propose(callees[0].jid, callB))
	send(t, ac, jmi("retract", callees[1].jid, ids[1]))
	s.waitMetric(`jinglepush_calls_events_total{action="propose",outcome="duplicate"}`, dups+2)

	// Every call ends with its missed-call alert, at its ring timeout at
	// the latest.
	want := 2 * (len(callees) + 1)
	s.apns.Wait(t, want, 30*time.Second)
	got := s.pushes(want)
	byCall := pushesOf(t, got)
	for _, id := range append(ids, callB) {
		if k := byCall[id]; len(k) != 2 || k["voip"] != 1 || k["alert:missed"] != 1 {
			t.Errorf("call %s: pushes %v, want one voip and one missed-call alert", id, k)
		}
	}

	var lines []string
	for _, l := range strings.Split(s.logs()[logFrom:], "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "redis answers again") {
			lines = append(lines, l)
		}
	}
	t.Logf("jinglepush's warnings and errors from the kill on:\n%s", strings.Join(lines, "\n"))
	t.Logf("counted: %s", strings.Join(s.nonZero("jinglepush_calls_fail_open_total", "jinglepush_calls_events_total",
		"jinglepush_redis_roundtrips_total", "jinglepush_timers_errors_total", "jinglepush_calls_wake_takeovers_total"), ", "))
}

// nonZero lists the samples of the named metrics that are not 0.
func (s *stack) nonZero(names ...string) []string {
	s.t.Helper()
	var out []string
	for _, name := range names {
		for _, l := range s.metricLines(name) {
			if !strings.HasSuffix(l, " 0") {
				out = append(out, l)
			}
		}
	}
	return out
}

// metricLines returns the sample lines of metric name.
func (s *stack) metricLines(name string) []string {
	s.t.Helper()
	var out []string
	for l := range strings.SplitSeq(s.metricsText(), "\n") {
		if rest, ok := strings.CutPrefix(l, name); ok && rest != "" && (rest[0] == '{' || rest[0] == ' ') {
			out = append(out, l)
		}
	}
	return out
}

// devicesKey returns the devices hash of the cluster that holds account.
func devicesKey(t *testing.T, c *testenv.RedisCluster, prefix, account string) string {
	t.Helper()
	ctx := context.Background()
	for _, m := range c.Masters(t) {
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr})
		keys, err := scanAll(ctx, rdb, prefix+"*}:d:*")
		for _, k := range keys {
			if ok, _ := rdb.HExists(ctx, k, account).Result(); ok {
				rdb.Close()
				return k
			}
		}
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("no devices hash holds %s", account)
	return ""
}

// waitReplicated waits until every replica has every write master took
// so far.
func waitReplicated(t *testing.T, master *testenv.Redis, replicas []*testenv.Redis) {
	t.Helper()
	want := replOffset(t, master.Addr, "master_repl_offset")
	for _, r := range replicas {
		testenv.Eventually(t, waitShort, func() bool {
			return replOffset(t, r.Addr, "slave_repl_offset") >= want
		}, "replica %s at offset %d", r.Addr, want)
	}
}

func replOffset(t *testing.T, addr, field string) int64 {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "replication").Result()
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	for l := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// probe writes one key, with the client jinglepush builds from its
// [redis] config, until a write succeeds: how long jinglepush's own
// client cannot reach the failed slots.
type probe struct {
	rdb  redis.UniversalClient
	key  string
	done chan time.Duration
}

func newProbe(r RedisConfig, key string) *probe {
	return &probe{rdb: newRedisClient(r), key: key, done: make(chan time.Duration, 1)}
}

func (p *probe) run(from time.Time) {
	defer p.rdb.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := p.rdb.Set(ctx, p.key, "x", time.Minute).Err()
		cancel()
		if err == nil {
			p.done <- time.Since(from)
			return
		}
		if time.Since(from) > time.Minute {
			close(p.done)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *probe) wait(timeout time.Duration) (time.Duration, error) {
	select {
	case d, ok := <-p.done:
		if !ok {
			return 0, errors.New("the probe never wrote to the failed slots")
		}
		return d, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("the probe did not write to the failed slots within %v", timeout)
	}
}
