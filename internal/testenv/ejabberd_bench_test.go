package testenv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// BenchmarkEjabberdCopies measures ejabberd's own CPU time per chat message
// between two local users, with the stock operator file (mod_service_log
// copies every stanza twice to jinglepush: the sender's and the
// recipient's), with mod_jinglepush (no copy: not a call), and with
// neither (the baseline: jinglepush.yml without mod_service_log). The metric
// beam-µs/msg is the utime+stime of the node's beam.smp over the b.N
// messages, divided by b.N; run with e.g. -benchtime=20000x, since the
// kernel counts CPU time in 10 ms ticks.
func BenchmarkEjabberdCopies(b *testing.B) {
	for _, bc := range []struct {
		name   string
		module bool
		copies int // per message
	}{{"service_log", false, 2}, {"mod_jinglepush", true, 0}, {"baseline", false, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			e := testenv.StartEjabberd(b, testenv.EjabberdOptions{Users: []string{"alice", "bob"}, JinglepushModule: bc.module})
			if bc.name == "baseline" {
				dropServiceLog(b, e)
			}
			c := dialComponent(b, e.Info())
			var copies atomic.Int64
			go func() {
				for st := range c.in {
					if strings.Contains(st.Raw, "<body>m") {
						copies.Add(1)
					}
				}
			}()
			alice := login(ctx, b, e.Info(), "alice", "phone", false)
			bob := login(ctx, b, e.Info(), "bob", "phone", false)
			// Warm up: every process and table the run uses exists.
			deliver(ctx, b, alice, bob, 50)
			testenv.Eventually(b, time.Minute, func() bool { return copies.Load() == int64(50*bc.copies) }, "the warm-up copies")
			copies.Store(0)

			cpu0, err := e.CPUTime()
			if err != nil {
				b.Skip(err)
			}
			b.ResetTimer()
			deliver(ctx, b, alice, bob, b.N)
			testenv.Eventually(b, time.Minute, func() bool { return copies.Load() == int64(b.N*bc.copies) }, "%d copies", b.N*bc.copies)
			b.StopTimer()
			cpu1, _ := e.CPUTime()
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "beam-µs/msg")
		})
	}
}

// dropServiceLog restarts e with the mod_service_log lines deleted from its
// jinglepush.yml, as the file tells operators to do for mod_jinglepush.
func dropServiceLog(tb testing.TB, e *testenv.Ejabberd) {
	tb.Helper()
	path := filepath.Join(e.Dir, "conf", "jinglepush.yml")
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var kept []string
	in := false
	for _, l := range strings.Split(string(raw), "\n") {
		in = l == "  mod_service_log:" || in && strings.HasPrefix(l, "    ")
		if !in {
			kept = append(kept, l)
		}
	}
	if len(kept) == len(strings.Split(string(raw), "\n")) {
		tb.Fatalf("%s loads no mod_service_log", path)
	}
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		tb.Fatal(err)
	}
	e.Restart(tb)
}

// deliver sends n chat messages from a to b in windows of 100 and waits
// until b got them all.
func deliver(ctx context.Context, tb testing.TB, a, b *xmppclient.Client, n int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("m%d", i)
		if _, err := a.SendMessage(b.JID(), body); err != nil {
			tb.Fatal(err)
		}
		if i%100 == 99 || i == n-1 {
			if _, err := b.WaitFor(ctx, messageFrom(a.JID(), body)); err != nil {
				tb.Fatal(err)
			}
		}
	}
}
