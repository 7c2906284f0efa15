package sessions

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// BenchmarkPropose is the hot path's Redis step against a real
// redis-server: one round trip holding the propose script (dedup, create
// the call, decide and mark the devices to wake) and the ring timeout's
// ZADD, for calls to offline accounts with two devices each.
func BenchmarkPropose(b *testing.B) {
	store, accounts := benchStore(b, 1000)
	ctx := context.Background()
	var seq atomic.Int64 // call ids stay new across the benchmark's runs
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			i := int(seq.Add(1))
			res, err := store.propose(ctx, benchProposal(accounts, i, "c"))
			if err != nil || len(res.wakes) != 2 {
				b.Fatalf("propose: %v %+v", err, res)
			}
		}
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

func benchStore(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	r := testenv.StartRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 32})
	b.Cleanup(func() { rdb.Close() })
	store := NewStore(rdb, "bench:", StoreOptions{TraceTTL: 10 * time.Minute})
	d := DefaultConfig()
	store.setPolicy(policy{ring: d.RingTimeout, grace: d.Grace, stale: d.StaleAfter, window: d.PublishWindow,
		lease: d.Lease, deviceTTL: d.DeviceTTL, wakeOnPublish: true, maxRinging: d.MaxRinging, maxPerDomain: d.MaxRemoteDomain,
		pairPerMinute: d.PairPerMinute, callerPerMinute: 1 << 20, domainPerMinute: 1 << 20})
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
