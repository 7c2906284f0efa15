package sessions

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// BenchmarkPropose is the hot path's Redis step against a real
// redis-server: one round trip holding the propose script (dedup, create
// the call, decide and mark the devices to wake, its ring timer and
// leases), for calls to offline accounts with two devices each.
// redis-µs/call is the time Redis spent per call (commandstats).
func BenchmarkPropose(b *testing.B) {
	store, accounts := benchStore(b, 1000)
	ctx := context.Background()
	var seq atomic.Int64 // call ids stay new across the benchmark's runs
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		spent := redisTime(b, store.rdb)
		for range b.N {
			i := int(seq.Add(1))
			res, err := store.propose(ctx, benchProposal(accounts, i, "c"))
			if err != nil || len(res.wakes) != 2 {
				b.Fatalf("propose: %v %+v", err, res)
			}
		}
		b.StopTimer()
		b.ReportMetric(spent(b.N), "redis-µs/call")
	})
	// Many workers at once, as the component's queues do.
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(seq.Add(1))
				if _, err := store.propose(ctx, benchProposal(accounts, i, "c")); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPushed is the second Redis step of a call: a wake settled
// after APNs took its push (feedback.go's delivered: plain commands, no
// script), once per woken device. redis-µs/push is its time inside Redis.
// Alone, each waits lingerFor for company (batch.go): time/op is that
// wait, not a cost.
func BenchmarkPushed(b *testing.B) {
	store, accounts := benchStore(b, 1000)
	ctx := context.Background()
	keys := make([]WakeKey, 0, b.N)
	for i := 0; len(keys) < b.N; i++ {
		p := benchProposal(accounts, i, "p")
		res, err := store.propose(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		for _, w := range res.wakes {
			keys = append(keys, WakeKey{Call: CallKey{Account: p.account, Caller: p.caller, ID: p.id}, DeviceID: w.device.ID, Attempt: p.attempt})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	spent := redisTime(b, store.rdb)
	for _, k := range keys[:b.N] {
		if err := store.recordPush(ctx, "delivered", k, "voip", "push dev0 voip success status=200 latency=1ms attempts=1"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(spent(b.N), "redis-µs/push")
}

func benchStore(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	r := testenv.StartRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 32})
	b.Cleanup(func() { rdb.Close() })
	store := NewStore(rdb, "bench:", StoreOptions{TraceTTL: 10 * time.Minute})
	d := DefaultConfig()
	store.setPolicy(policy{ring: d.RingTimeout, grace: d.Grace, stale: d.StaleAfter, window: d.PublishWindow,
		lease: d.Lease, deviceTTL: d.DeviceTTL, wakeOnPublish: true,
		pairPerMinute: 0, callerPerMinute: 0, domainPerMinute: 0})
	ctx := context.Background()
	if err := store.LoadScripts(ctx); err != nil {
		b.Fatal(err)
	}
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("user%d@example.com", i)
		for j := range 2 {
			d := Device{ID: "dev" + strconv.Itoa(j), Resource: "phone" + strconv.Itoa(j),
				VoIPToken: fmt.Sprintf("%064x", i*2+j), BundleID: "com.example.chat", Environment: "production",
				Node: makeNode(accounts[i], []byte{byte(i), byte(j)}), Secret: "c2VjcmV0"}
			if _, err := store.putDevice(ctx, accounts[i], d, 10, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	}
	return store, accounts
}

func benchProposal(accounts []string, i int, tag string) proposal {
	// Callers vary, so the per-caller limits stay out of the way.
	caller := "caller" + strconv.Itoa(i) + "@example.com"
	return proposal{
		account: accounts[i%len(accounts)], caller: caller, id: tag + strconv.Itoa(i),
		from: caller + "/phone", media: []string{"audio"}, attempt: newAttempt(), source: "deliver",
	}
}

// BenchmarkPublishUnderRingingCalls is a XEP-0357 publish for a callee with
// 5,000 calls ringing (limits off: what a flood could leave without them).
// It reports the publish's own time inside Redis (commandstats), the
// figure that blocks every other client: a publish only looks at the
// account's newest calls, so it does not grow with the calls ringing.
func BenchmarkPublishUnderRingingCalls(b *testing.B) {
	store, accounts := benchStore(b, 1)
	ctx := context.Background()
	account := accounts[0]
	for i := range 5000 {
		p := benchProposal(accounts, i, "flood")
		p.account = account
		if _, err := store.propose(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	if n, _ := store.rdb.HLen(ctx, store.keys.ringing(account)).Result(); n != 5000 {
		b.Fatalf("%d calls ringing, want 5000", n)
	}
	devices, err := store.Devices(ctx, account)
	if err != nil || len(devices) == 0 {
		b.Fatal("no device", err)
	}
	d := devices[0]
	_, random, _ := parseNode(d.Node)
	b.ResetTimer()
	spent := redisTime(b, store.rdb)
	for range b.N {
		if _, err := store.publish(ctx, account, random, d.Secret, true, 0, "{}", newAttempt()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(spent(b.N), "redis-µs/publish")
}

// redisTime starts counting the time Redis spends running commands and
// scripts (INFO commandstats, all but INFO itself); the function it
// returns gives that time divided by n, the operations run since.
func redisTime(b *testing.B, rdb redis.UniversalClient) func(n int) float64 {
	b.Helper()
	ctx := context.Background()
	read := func() (us float64) {
		info, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
				continue
			}
			for _, kv := range strings.Split(rest, ",") {
				if k, v, _ := strings.Cut(kv, "="); k == "usec" {
					f, _ := strconv.ParseFloat(v, 64)
					us += f
				}
			}
		}
		return us
	}
	u0 := read()
	return func(n int) float64 {
		if n == 0 {
			return 0
		}
		return (read() - u0) / float64(n)
	}
}
