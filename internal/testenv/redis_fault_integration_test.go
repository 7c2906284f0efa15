package testenv_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// client returns a go-redis client of r whose commands give up after
// timeout, closed at cleanup.
func client(t *testing.T, addr string, timeout time.Duration) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1})
	t.Cleanup(func() { rc.Close() })
	return rc
}

func TestRedisPause(t *testing.T) {
	r := testenv.StartRedis(t)
	rc := client(t, r.Addr, 200*time.Millisecond)
	ctx := context.Background()
	if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Pause()
	if !r.Paused() || !r.Running() {
		t.Errorf("paused %v, running %v", r.Paused(), r.Running())
	}
	var netErr interface{ Timeout() bool }
	if err := rc.Get(ctx, "k").Err(); !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Errorf("GET on a paused server: %v, want a timeout", err)
	}
	r.Resume()
	if got, err := rc.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET after Resume: %q, %v", got, err)
	}
}

// TestRedisKillRestart kills a server with an append-only file: a restart
// brings back every acknowledged write, on the same address, and a client
// reconnects by itself.
func TestRedisKillRestart(t *testing.T) {
	r := testenv.StartRedisWith(t, testenv.RedisOptions{AppendOnly: true})
	addr := r.Addr
	rc := client(t, r.Addr, time.Second)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if err := rc.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.Kill()
	if r.Running() {
		t.Fatal("running after Kill")
	}
	if err := rc.Ping(ctx).Err(); err == nil {
		t.Error("PING answered after Kill")
	}
	r.Restart(t)
	if r.Addr != addr {
		t.Errorf("address %s after restart, was %s", r.Addr, addr)
	}
	if got, err := rc.MGet(ctx, "a", "b", "c").Result(); err != nil || len(got) != 3 || got[2] != "c" {
		t.Errorf("after restart: %v, %v", got, err)
	}

	r.RestartEmpty(t)
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("after RestartEmpty: %d keys, %v", n, err)
	}
	if _, err := os.Stat(r.Dir); err != nil {
		t.Error(err)
	}
}

// TestRedisKillWithoutPersistence: the default server loses its data.
func TestRedisKillWithoutPersistence(t *testing.T) {
	r := testenv.StartRedis(t)
	rc := client(t, r.Addr, time.Second)
	ctx := context.Background()
	if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	r.Restart(t)
	if err := rc.Get(ctx, "k").Err(); err != redis.Nil {
		t.Errorf("GET after restart: %v, want no value", err)
	}
}

func TestRedisConfig(t *testing.T) {
	r := testenv.StartRedisWith(t, testenv.RedisOptions{Config: map[string]string{"maxmemory": "10mb", "save": "3600 1"}})
	rc := client(t, r.Addr, time.Second)
	ctx := context.Background()
	r.Config(t, "maxmemory-policy", "allkeys-lru")
	check := func(when string) {
		t.Helper()
		got, err := rc.ConfigGet(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"maxmemory": "10485760", "save": "3600 1", "maxmemory-policy": "allkeys-lru", "appendonly": "no"} {
			if got[k] != want {
				t.Errorf("%s: %s %q, want %q", when, k, got[k], want)
			}
		}
	}
	check("at start")
	// save "3600 1" writes a snapshot at shutdown: Restart keeps the data.
	if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Restart(t)
	check("after restart")
	if got := rc.Get(ctx, "k").Val(); got != "v" {
		t.Errorf("GET after restart: %q", got)
	}
}
