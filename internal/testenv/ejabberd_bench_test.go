package testenv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
// neither (the baseline: the module's node restarted without the module;
// a node restarted after running mod_service_log does 15-25% more work per
// message for reasons of its own history). The metric
// beam-µs/msg is the utime+stime of the node's beam.smp over the b.N
// messages, divided by b.N (run with e.g. -benchtime=10000x: the kernel
// counts CPU time in 10 ms ticks); reductions/msg is the VM's own count of
// the work done, which the machine's load does not blur.
func BenchmarkEjabberdCopies(b *testing.B) {
	for _, bc := range []struct {
		name   string
		module bool
		copies int // per message
	}{{"service_log", false, 2}, {"mod_jinglepush", true, 0}, {"baseline", true, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			e := testenv.StartEjabberd(b, testenv.EjabberdOptions{Users: []string{"alice", "bob"}, JinglepushModule: bc.module})
			if bc.name == "baseline" {
				dropModule(b, e)
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

			red0 := reductions(b, e)
			cpu0, err := e.CPUTime()
			if err != nil {
				b.Skip(err)
			}
			b.ResetTimer()
			deliver(ctx, b, alice, bob, b.N)
			testenv.Eventually(b, time.Minute, func() bool { return copies.Load() == int64(b.N*bc.copies) }, "%d copies", b.N*bc.copies)
			b.StopTimer()
			cpu1, _ := e.CPUTime()
			red1 := reductions(b, e)
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "beam-µs/msg")
			b.ReportMetric(float64(red1-red0)/float64(b.N), "reductions/msg")
		})
	}
}

// dropModule restarts e without mod_jinglepush.yml in its ejabberd.yml:
// the same node, with the same history, as with the module, minus the
// module.
func dropModule(tb testing.TB, e *testenv.Ejabberd) {
	tb.Helper()
	raw, err := os.ReadFile(e.ConfigPath)
	if err != nil {
		tb.Fatal(err)
	}
	include := "\n  - \"" + filepath.Join(e.Dir, "conf", "mod_jinglepush.yml") + "\""
	if !strings.Contains(string(raw), include) {
		tb.Fatalf("%s does not include mod_jinglepush.yml:\n%s", e.ConfigPath, raw)
	}
	if err := os.WriteFile(e.ConfigPath, []byte(strings.Replace(string(raw), include, "", 1)), 0o600); err != nil {
		tb.Fatal(err)
	}
	e.Restart(tb)
}

// reductions returns the work the node has done so far, counted by the
// Erlang VM (a reduction is roughly a function call): unlike CPU time it
// does not depend on how often the schedulers sleep and wake up.
func reductions(tb testing.TB, e *testenv.Ejabberd) int64 {
	tb.Helper()
	n, err := strconv.ParseInt(e.Eval(tb, "element(1, erlang:statistics(reductions))"), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return n
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
