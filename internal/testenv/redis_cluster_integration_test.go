package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// clusterClient returns a go-redis cluster client seeded with every node.
// It reloads the slot map every second: by default it waits a minute, and
// until then sends the slots of a killed master to the dead address (no
// MOVED reply tells it otherwise).
func clusterClient(t *testing.T, c *testenv.RedisCluster) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ClusterStateReloadInterval: time.Second})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// sharedCluster gets the shared cluster and logs how long that took:
// the first test to ask pays for the start.
func sharedCluster(t *testing.T) *testenv.RedisCluster {
	t.Helper()
	start := time.Now()
	c := cluster.Get(t)
	t.Logf("shared cluster ready in %v", time.Since(start).Round(time.Millisecond))
	return c
}

func TestRedisClusterSlots(t *testing.T) {
	c := sharedCluster(t)
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	masters := c.Masters(t)
	if len(masters) != 3 {
		t.Fatalf("%d masters", len(masters))
	}
	for _, m := range masters {
		if rs := c.ReplicasOf(t, m); len(rs) != 1 {
			t.Errorf("master %s has %d replicas", m.Addr, len(rs))
		}
	}
	for _, n := range c.Nodes {
		if !strings.HasPrefix(n.Addr, "127.0.0.1:") || len(n.ID) != 40 {
			t.Errorf("node %s %q", n.Addr, n.ID)
		}
		info, err := redis.NewClient(&redis.Options{Addr: n.Addr}).ClusterInfo(context.Background()).Result()
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			t.Errorf("%s: %v\n%s", n.Addr, err, info)
		}
	}
	// Slots 0 and 16383 are at both ends of the ranges.
	if a, b := c.MasterForSlot(t, 0), c.MasterForSlot(t, 16383); a == b {
		t.Errorf("slots 0 and 16383 both on %s", a.Addr)
	}

	cc := clusterClient(t, c)
	ctx := context.Background()
	onMaster := make(map[string]bool)
	for i := range 30 {
		key := fmt.Sprintf("%s:%d", t.Name(), i)
		if err := cc.Set(ctx, key, i, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		m := c.MasterForKey(t, key)
		onMaster[m.Addr] = true
		got, err := redis.NewClient(&redis.Options{Addr: m.Addr}).Get(ctx, key).Int()
		if err != nil || got != i {
			t.Errorf("%s on %s: %d, %v", key, m.Addr, got, err)
		}
	}
	if len(onMaster) != 3 {
		t.Errorf("30 keys on %d masters", len(onMaster))
	}
}

// TestRedisClusterFailover fails over the master of a key with CLUSTER
// FAILOVER: the key, replicated before (WAIT), is still there, and the
// cluster client follows the move.
func TestRedisClusterFailover(t *testing.T) {
	c := sharedCluster(t)
	cc := clusterClient(t, c)
	ctx := context.Background()
	key := "{" + t.Name() + "}:k"
	if err := cc.Set(ctx, key, "before", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	old := c.MasterForKey(t, key)
	// WAIT counts the replicas that have the writes of its connection: one
	// pipeline, one connection.
	var wait *redis.Cmd
	master, err := cc.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := master.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, "replicated", time.Minute)
		wait = p.Do(ctx, "WAIT", 1, 5000)
		return nil
	}); err != nil || wait.Val() != int64(1) {
		t.Fatalf("SET and WAIT: %v replicas, %v", wait.Val(), err)
	}

	start := time.Now()
	n := c.Failover(t, old)
	t.Logf("CLUSTER FAILOVER of %s to %s done in %v", old.Addr, n.Addr, time.Since(start).Round(time.Millisecond))
	if n == old || c.MasterForKey(t, key) != n {
		t.Fatalf("key served by %s, want %s", c.MasterForKey(t, key).Addr, n.Addr)
	}
	if rs := c.ReplicasOf(t, n); len(rs) != 1 || rs[0] != old {
		t.Errorf("replicas of the new master: %v", rs)
	}
	if got, err := cc.Get(ctx, key).Result(); err != nil || got != "replicated" {
		t.Errorf("GET after failover: %q, %v", got, err)
	}
	if err := cc.Set(ctx, key, "after", time.Minute).Err(); err != nil {
		t.Errorf("SET after failover: %v", err)
	}
}

// TestRedisClusterFailoverByKill kills the master of a key: its replica,
// which had the key, takes over, and the old master comes back as the new
// one's replica.
func TestRedisClusterFailoverByKill(t *testing.T) {
	c := sharedCluster(t)
	cc := clusterClient(t, c)
	ctx := context.Background()
	key := "{" + t.Name() + "}:k"
	if err := cc.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	old := c.MasterForKey(t, key)
	replica := c.ReplicasOf(t, old)[0]
	// A replica read: READONLY lets it answer for its master's slots.
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr, OnConnect: func(ctx context.Context, cn *redis.Conn) error {
		return cn.ReadOnly(ctx).Err()
	}})
	defer rc.Close()
	testenv.Eventually(t, 5*time.Second, func() bool { return rc.Get(ctx, key).Val() == "v" }, "the replica to have %s", key)

	start := time.Now()
	n := c.FailoverByKill(t, old)
	t.Logf("failover after SIGKILL of %s to %s done in %v", old.Addr, n.Addr, time.Since(start).Round(time.Millisecond))
	if n != replica {
		t.Errorf("new master %s, want %s", n.Addr, replica.Addr)
	}
	start = time.Now()
	testenv.Eventually(t, 10*time.Second, func() bool { return cc.Get(ctx, key).Val() == "v" }, "the cluster client to read %s from the new master", key)
	t.Logf("the cluster client reads from the new master after %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	old.Restart(t)
	c.WaitHealthy(t)
	t.Logf("killed master back as a replica in %v", time.Since(start).Round(time.Millisecond))
	if rs := c.ReplicasOf(t, n); len(rs) != 1 || rs[0] != old {
		t.Errorf("replicas of the new master: %v", rs)
	}
}

// TestRedisClusterPause pauses a master for less than the node timeout:
// commands wait, and go through once it is resumed, with no failover.
func TestRedisClusterPause(t *testing.T) {
	c := sharedCluster(t)
	ctx := context.Background()
	key := "{" + t.Name() + "}:k"
	m := c.MasterForKey(t, key)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr, ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rc.Close()
	m.Pause()
	if err := rc.Set(ctx, key, "v", time.Minute).Err(); err == nil {
		t.Error("SET answered by a paused master")
	}
	m.Resume()
	testenv.Eventually(t, 5*time.Second, func() bool { return rc.Set(ctx, key, "v", time.Minute).Err() == nil }, "SET after Resume")
	if got := c.MasterForKey(t, key); got != m {
		t.Errorf("key moved to %s", got.Addr)
	}
}

// TestSharedRedisClusterRepairs leaves a node killed and one paused; the
// next Get brings both back.
func TestSharedRedisClusterRepairs(t *testing.T) {
	c := sharedCluster(t)
	replica := c.ReplicasOf(t, c.Masters(t)[0])[0]
	other := c.ReplicasOf(t, c.Masters(t)[1])[0]
	replica.Kill()
	other.Pause()
	if c2 := cluster.Get(t); c2 != c {
		t.Fatal("Get returned another cluster")
	}
	if !replica.Running() || other.Paused() {
		t.Errorf("running %v, paused %v", replica.Running(), other.Paused())
	}
}
