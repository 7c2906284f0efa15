package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// TestRedisSentinel fails over a master with one replica and one sentinel,
// on request and by killing it, as go-redis's FailoverClient sees it.
func TestRedisSentinel(t *testing.T) {
	t.Parallel() // its own servers, and mostly waiting
	start := time.Now()
	s := testenv.StartRedisSentinel(t, testenv.SentinelOptions{})
	t.Logf("master, replica and sentinel ready in %v", time.Since(start).Round(time.Millisecond))
	if len(s.Servers) != 2 || len(s.Sentinels) != 1 || s.MasterName != "mymaster" {
		t.Fatalf("%d servers, %d sentinels, master %q", len(s.Servers), len(s.Sentinels), s.MasterName)
	}
	if m := s.Master(t); m != s.Servers[0] {
		t.Errorf("master %s, want %s", m.Addr, s.Servers[0].Addr)
	}
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs()})
	defer fc.Close()
	ctx := context.Background()

	t.Run("failover", func(t *testing.T) {
		// WAIT on the connection of the SET: the replica has it.
		var wait *redis.Cmd
		if _, err := fc.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "before", 0)
			wait = p.Do(ctx, "WAIT", 1, 5000)
			return nil
		}); err != nil || wait.Val() != int64(1) {
			t.Fatalf("SET and WAIT: %v replicas, %v", wait.Val(), err)
		}
		old := s.Master(t)
		start := time.Now()
		m := s.Failover(t)
		t.Logf("SENTINEL FAILOVER from %s to %s done in %v (old master a replica again)", old.Addr, m.Addr, time.Since(start).Round(time.Millisecond))
		if m == old {
			t.Fatal("same master")
		}
		checkFollows(t, fc, m, "before")
		if rs := s.Replicas(t); len(rs) != 1 || rs[0] != old {
			t.Errorf("replicas %v, want the old master", rs)
		}
	})

	t.Run("kill", func(t *testing.T) {
		if err := fc.Set(ctx, "k", "before kill", 0).Err(); err != nil {
			t.Fatal(err)
		}
		old := s.Master(t)
		replica := s.Replicas(t)[0]
		testenv.Eventually(t, 5*time.Second, func() bool {
			return redis.NewClient(&redis.Options{Addr: replica.Addr}).Get(ctx, "k").Val() == "before kill"
		}, "the replica to have the key")
		start := time.Now()
		m := s.FailoverByKill(t)
		t.Logf("failover after SIGKILL of %s to %s done in %v", old.Addr, m.Addr, time.Since(start).Round(time.Millisecond))
		checkFollows(t, fc, m, "before kill")

		start = time.Now()
		old.Restart(t)
		s.WaitHealthy(t)
		t.Logf("killed master back as a replica in %v", time.Since(start).Round(time.Millisecond))
		if rs := s.Replicas(t); len(rs) != 1 || rs[0] != old {
			t.Errorf("replicas %v, want the old master", rs)
		}
	})
}

// checkFollows checks that fc reads want from the new master m and writes
// to it.
func checkFollows(t *testing.T, fc *redis.Client, m *testenv.Redis, want string) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	testenv.Eventually(t, 10*time.Second, func() bool { return fc.Set(ctx, "after", m.Addr, 0).Err() == nil }, "the failover client to write")
	t.Logf("the failover client writes again after %v", time.Since(start).Round(time.Millisecond))
	mc := redis.NewClient(&redis.Options{Addr: m.Addr})
	defer mc.Close()
	if got := mc.Get(ctx, "after").Val(); got != m.Addr {
		t.Errorf("the failover client's write is not on the new master: %q", got)
	}
	if got, err := fc.Get(ctx, "k").Result(); err != nil || got != want {
		t.Errorf("GET k: %q, %v; want %q", got, err, want)
	}
}

// TestRedisSentinelQuorum pauses the master watched by three sentinels: they
// agree that it is down and promote the replica; resumed, the old master
// becomes a replica.
func TestRedisSentinelQuorum(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := testenv.StartRedisSentinel(t, testenv.SentinelOptions{Sentinels: 3})
	t.Logf("master, replica and three sentinels ready in %v", time.Since(start).Round(time.Millisecond))
	old := s.Master(t)
	start = time.Now()
	old.Pause()
	m := s.WaitNewMaster(t, old)
	t.Logf("failover of the paused %s to %s done in %v", old.Addr, m.Addr, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	old.Resume()
	s.WaitHealthy(t)
	t.Logf("resumed master back as a replica in %v", time.Since(start).Round(time.Millisecond))
	if rs := s.Replicas(t); len(rs) != 1 || rs[0] != old {
		t.Errorf("replicas %v, want the old master", rs)
	}

	// A restarted sentinel reads what it learnt back from its file, and gets
	// its short periods again.
	sen := s.Sentinels[1]
	sen.Restart(t)
	s.WaitHealthy(t)
	if got := s.Master(t); got != m {
		t.Errorf("master after a sentinel restart: %s, want %s", got.Addr, m.Addr)
	}
	sc := redis.NewClient(&redis.Options{Addr: sen.Addr, Protocol: 2}) // RESP2: a flat list
	defer sc.Close()
	debug, err := sc.Do(context.Background(), "SENTINEL", "DEBUG").StringSlice()
	if err != nil || len(debug) < 2 || debug[0] != "INFO-PERIOD" || debug[1] != "500" {
		t.Errorf("SENTINEL DEBUG after restart: %v, %v", debug, err)
	}
}
