package testenv

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// SharedRedisCluster is one Redis Cluster for every test of a test binary
// that asks for it: six servers and a cluster handshake per test would cost
// more than most tests. Declare it as a package variable and close it in
// TestMain:
//
//	var cluster = &testenv.SharedRedisCluster{Options: testenv.ClusterOptions{ReplicasPerMaster: 1}}
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		cluster.Close()
//		os.Exit(code)
//	}
//
// Tests that share it keep to their own keys with a prefix; a hash tag in
// it ("{test-name}:...") keeps a test's keys in one slot for MULTI or Lua.
// A test that fails over, pauses or kills nodes changes the cluster under
// any test running beside it: do not mark it t.Parallel.
// Without Close the servers still die with the test binary (Pdeathsig), but
// their folders stay behind.
type SharedRedisCluster struct {
	// Options are the cluster's, read once at the first Get.
	Options ClusterOptions

	once    sync.Once
	owner   *detached
	cluster *RedisCluster
	err     error
	repair  sync.Mutex // parallel tests must not restart a node twice
}

// Get returns the cluster, started at the first call. A test gets it
// healthy: nodes an earlier test paused are resumed, those it killed or
// stopped are restarted, and Get waits for the cluster to settle. If t
// fails, the end of every node's output is logged. t is skipped if
// redis-server is not installed, as with StartRedisCluster.
func (s *SharedRedisCluster) Get(t testing.TB) *RedisCluster {
	t.Helper()
	RequireBinary(t, "redis-server")
	s.once.Do(func() {
		s.owner = &detached{name: "shared redis cluster"}
		s.err = s.owner.run(func(tb testing.TB) {
			s.cluster = StartRedisCluster(tb, s.Options)
		})
	})
	if s.err != nil {
		t.Fatalf("testenv: %v", s.err)
	}
	c := s.cluster
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("testenv: output of %s %s (%s), last lines:\n%s", n.name, n.Addr, n.process().exitStatus(), lastBytes(n.process().Output(), 8<<10))
			}
		}
	})
	s.repair.Lock()
	defer s.repair.Unlock()
	for _, n := range c.Nodes {
		if !n.Running() {
			n.Restart(t)
		} else if n.Paused() {
			n.Resume()
		}
	}
	c.WaitHealthy(t)
	return c
}

// Close stops the cluster's servers and removes their folders.
func (s *SharedRedisCluster) Close() {
	if s.owner != nil {
		s.owner.close()
	}
}

// SharedRedisSentinel is one Redis Sentinel setup (a master, its replicas
// and the sentinels) for every test of a test binary that asks for it, as
// SharedRedisCluster is for a cluster, with the same rules: keys under a
// prefix of the test's own, no t.Parallel for a test that fails over,
// pauses or kills a server, Close in TestMain.
type SharedRedisSentinel struct {
	// Options are the setup's, read once at the first Get.
	Options SentinelOptions

	once     sync.Once
	owner    *detached
	sentinel *RedisSentinel
	err      error
	repair   sync.Mutex
}

// Get returns the setup, started at the first call, healthy: servers and
// sentinels an earlier test paused are resumed, those it killed or stopped
// are restarted, and Get waits until the sentinels agree on a master that
// every other server replicates. If t fails, the end of every process's
// output is logged. t is skipped if redis-server or redis-sentinel is not
// installed, as with StartRedisSentinel.
func (s *SharedRedisSentinel) Get(t testing.TB) *RedisSentinel {
	t.Helper()
	RequireBinary(t, "redis-server")
	RequireBinary(t, "redis-sentinel")
	s.once.Do(func() {
		s.owner = &detached{name: "shared redis sentinel"}
		s.err = s.owner.run(func(tb testing.TB) {
			s.sentinel = StartRedisSentinel(tb, s.Options)
		})
	})
	if s.err != nil {
		t.Fatalf("testenv: %v", s.err)
	}
	rs := s.sentinel
	all := append(append([]*Redis(nil), rs.Servers...), rs.Sentinels...)
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range all {
				t.Logf("testenv: output of %s %s (%s), last lines:\n%s", r.name, r.Addr, r.process().exitStatus(), lastBytes(r.process().Output(), 8<<10))
			}
		}
	})
	s.repair.Lock()
	defer s.repair.Unlock()
	for _, r := range all {
		if !r.Running() {
			r.Restart(t)
		} else if r.Paused() {
			r.Resume()
		}
	}
	rs.WaitHealthy(t)
	return rs
}

// Close stops the setup's processes and removes their folders.
func (s *SharedRedisSentinel) Close() {
	if s.owner != nil {
		s.owner.close()
	}
}

// lastBytes returns the end of s, at most n bytes from a line start.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}

// detached is the testing.TB of servers that outlive the test that starts
// them: it collects their cleanups for close, hands out folders it
// removes then, and writes logs (of JINGLEPUSH_TEST_VERBOSE) to stderr. The
// starters call only the methods defined here; the embedded nil TB makes
// any other call a panic rather than a silent no-op.
type detached struct {
	testing.TB
	name string

	mu       sync.Mutex
	cleanups []func()
	dirs     []string
	failed   bool
}

// detachedFatal carries a Fatal or Skip of a detached start to run.
type detachedFatal struct{ msg string }

// run calls start, turning the Fatal and Skip calls it makes on its own
// goroutine into an error.
func (d *detached) run(start func(testing.TB)) (err error) {
	defer func() {
		if v := recover(); v != nil {
			f, ok := v.(detachedFatal)
			if !ok {
				panic(v)
			}
			d.close()
			err = fmt.Errorf("%s: %s", d.name, f.msg)
		}
	}()
	start(d)
	return nil
}

func (d *detached) close() {
	d.mu.Lock()
	cleanups, dirs := d.cleanups, d.dirs
	d.cleanups, d.dirs = nil, nil
	d.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, dir := range dirs {
		_ = os.RemoveAll(dir)
	}
}

func (d *detached) Helper()      {}
func (d *detached) Name() string { return d.name }

func (d *detached) Cleanup(f func()) {
	d.mu.Lock()
	d.cleanups = append(d.cleanups, f)
	d.mu.Unlock()
}

func (d *detached) TempDir() string {
	dir, err := os.MkdirTemp("", "jinglepush-testenv-")
	if err != nil {
		d.Fatalf("%v", err)
	}
	d.mu.Lock()
	d.dirs = append(d.dirs, dir)
	d.mu.Unlock()
	return dir
}

func (d *detached) Log(args ...any) { d.Logf("%s", fmt.Sprintln(args...)) }
func (d *detached) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", d.name, fmt.Sprintf(format, args...))
}

func (d *detached) Error(args ...any) { d.Errorf("%s", fmt.Sprint(args...)) }
func (d *detached) Errorf(format string, args ...any) {
	d.Logf(format, args...)
	d.Fail()
}

func (d *detached) Fail() {
	d.mu.Lock()
	d.failed = true
	d.mu.Unlock()
}

func (d *detached) Failed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

func (d *detached) FailNow()          { panic(detachedFatal{"failed"}) }
func (d *detached) Fatal(args ...any) { panic(detachedFatal{fmt.Sprint(args...)}) }
func (d *detached) Fatalf(format string, args ...any) {
	panic(detachedFatal{fmt.Sprintf(format, args...)})
}
func (d *detached) Skip(args ...any) { panic(detachedFatal{fmt.Sprint(args...)}) }
func (d *detached) Skipf(format string, args ...any) {
	panic(detachedFatal{fmt.Sprintf(format, args...)})
}
func (d *detached) SkipNow()      { panic(detachedFatal{"skipped"}) }
func (d *detached) Skipped() bool { return false }
