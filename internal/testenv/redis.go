package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 30 * time.Second

// errPortTaken means a server could not bind its port; the starters retry
// with other ports.
var errPortTaken = errors.New("port already in use")

// Redis is a redis-server run for one test. By default it has no
// persistence; see RedisOptions.
type Redis struct {
	// Addr is host:port of the server (127.0.0.1). It stays the same across
	// restarts, so clients reconnect to the restarted server.
	Addr string
	// Dir is its working directory.
	Dir string

	t    testing.TB
	name string   // of the process, in logs
	bin  string   // redis-server, or redis-sentinel
	conf string   // config file given first on the command line, if any
	args []string // after the ones start adds
	// ready, if set, runs once the server answers PING, after each start.
	ready func() error

	mu     sync.Mutex
	proc   *Process
	paused bool
	config map[string]string // options set with Config, kept across restarts
}

// RedisOptions change how StartRedisWith runs redis-server.
type RedisOptions struct {
	// AppendOnly turns on the append-only file, fsynced before each write is
	// acknowledged, so that Restart brings back every acknowledged write,
	// after Kill too. Without it, and without "save" in Config, a restart
	// loses the data.
	AppendOnly bool
	// Config holds more redis-server options, name to value, e.g.
	// {"maxmemory": "10mb", "maxmemory-policy": "noeviction"} or
	// {"save": "3600 1"} for an RDB snapshot at shutdown.
	Config map[string]string
}

// StartRedis starts redis-server on a free loopback port and waits until it
// answers PING. It is stopped at cleanup. The test is skipped if redis-server
// is not installed (see EnvRequireServers).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisWith(t, RedisOptions{})
}

// StartRedisWith is StartRedis with options.
func StartRedisWith(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r := newRedis(t, "redis", RequireBinary(t, "redis-server"), t.TempDir(), opts)
	r.startOnFreePort(t)
	return r
}

// newRedis returns the server to run from bin in dir, not started yet.
func newRedis(t testing.TB, name, bin, dir string, opts RedisOptions) *Redis {
	appendOnly := "no"
	if opts.AppendOnly {
		appendOnly = "yes"
	}
	r := &Redis{t: t, name: name, bin: bin, Dir: dir, config: make(map[string]string)}
	r.args = []string{"--save", "", "--appendonly", appendOnly, "--appendfsync", "always"}
	for _, k := range slices.Sorted(maps.Keys(opts.Config)) {
		r.args = append(r.args, "--"+k, opts.Config[k])
	}
	return r
}

// startOnFreePort starts the server on a new free port until one is not
// taken, three times at most.
func (r *Redis) startOnFreePort(t testing.TB) {
	t.Helper()
	startOnFreePorts(t, r.name, []string{loopback}, func(ports []int) error {
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		return r.start()
	})
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	var args []string
	if r.conf != "" {
		args = append(args, r.conf)
	}
	args = append(args,
		"--port", port, "--bind", "127.0.0.1",
		"--dir", r.Dir,
		"--daemonize", "no", "--logfile", "")
	args = append(args, r.args...)
	r.mu.Lock()
	for _, k := range slices.Sorted(maps.Keys(r.config)) {
		args = append(args, "--"+k, r.config[k])
	}
	r.mu.Unlock()
	p, err := startProcess(r.t, r.name, exec.Command(r.bin, args...))
	if err != nil {
		return err
	}
	// Registered after startProcess's cleanup, so it runs first: a paused
	// server would ignore the SIGTERM that stops it.
	r.t.Cleanup(func() { resumeProcess(p) })
	err = waitReady(p, startTimeout, func() error { return redisPing(r.Addr) })
	if err == nil && r.ready != nil {
		if err = r.ready(); err != nil {
			err = fmt.Errorf("%s: %w", r.Addr, err)
		}
	}
	if err != nil {
		p.Stop()
		if strings.Contains(p.Output(), "Address already in use") {
			return errPortTaken
		}
		return fmt.Errorf("%w\n%s", err, p.Output())
	}
	r.mu.Lock()
	r.proc, r.paused = p, false
	r.mu.Unlock()
	return nil
}

// process returns the current process.
func (r *Redis) process() *Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// Stop stops the server, e.g. to test what happens while Redis is down. A
// paused server is resumed first.
func (r *Redis) Stop() {
	p := r.process()
	resumeProcess(p)
	p.Stop()
}

// Restart stops the server if it runs and starts it again on the same port;
// t is failed if that does not work. It keeps its data if it has
// persistence (RedisOptions.AppendOnly, or "save"), and loses it otherwise.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		if errors.Is(err, errPortTaken) {
			err = fmt.Errorf("%s was taken by another process while the server was down", r.Addr)
		}
		t.Fatalf("testenv: restart %s: %v", r.name, err)
	}
}

// RestartEmpty stops the server if it runs, removes its data (not its
// config files, such as a cluster node's nodes.conf), and starts it again on
// the same port.
func (r *Redis) RestartEmpty(t testing.TB) {
	t.Helper()
	r.Stop()
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".conf") {
			if err := os.RemoveAll(filepath.Join(r.Dir, e.Name())); err != nil {
				t.Fatalf("testenv: %v", err)
			}
		}
	}
	r.Restart(t)
}

// Kill ends the server with SIGKILL: nothing is flushed or saved beyond
// what it wrote before. Restart brings it back.
func (r *Redis) Kill() {
	p := r.process()
	signalGroup(p.cmd, sigKill)
	<-p.Done()
	p.Stop()
}

// Pause stops the server with SIGSTOP: connections stay open and commands
// hang until Resume, as with a server that is stuck. Stop, Restart, Kill and
// the test's cleanup resume it first. The test is skipped where processes
// cannot be paused (not unix).
func (r *Redis) Pause() {
	if !canPause {
		r.t.Skip("testenv: pausing a process needs SIGSTOP")
	}
	p := r.process()
	signalGroup(p.cmd, sigStop)
	waitStopped(p, true)
	r.mu.Lock()
	r.paused = true
	r.mu.Unlock()
}

// Resume continues a server stopped by Pause.
func (r *Redis) Resume() {
	resumeProcess(r.process())
	r.mu.Lock()
	r.paused = false
	r.mu.Unlock()
}

// Paused reports whether the server is paused.
func (r *Redis) Paused() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused
}

// Running reports whether the server process runs (paused or not).
func (r *Redis) Running() bool {
	select {
	case <-r.process().Done():
		return false
	default:
		return true
	}
}

// up reports whether the server runs and is not paused: whether it can
// answer.
func (r *Redis) up() bool { return r.Running() && !r.Paused() }

// Config sets a server option now (CONFIG SET) and for every restart, e.g.
// r.Config(t, "maxmemory-policy", "allkeys-lru").
func (r *Redis) Config(t testing.TB, name, value string) {
	t.Helper()
	if err := redisOK(r.Addr, "CONFIG", "SET", name, value); err != nil {
		t.Fatalf("testenv: %s: CONFIG SET %s %q: %v", r.Addr, name, value, err)
	}
	r.mu.Lock()
	r.config[name] = value
	r.mu.Unlock()
}

// resumeProcess sends SIGCONT to p's group, which is harmless if it runs,
// and waits until it is no longer stopped.
func resumeProcess(p *Process) {
	if canPause {
		signalGroup(p.cmd, sigCont)
		waitStopped(p, false)
	}
}

// redisPing sends an inline PING and expects +PONG.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		// -LOADING, -BUSY...: not ready yet
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// waitReady polls ready until it succeeds, the process exits, or timeout
// passes.
func waitReady(p *Process, timeout time.Duration, ready func() error) error {
	var last error
	err := poll(timeout, func() (bool, error) {
		select {
		case <-p.Done():
			return false, fmt.Errorf("%s exited before it was ready (%s)", p.name, p.exitStatus())
		default:
		}
		last = ready()
		var perm permanentError
		if errors.As(last, &perm) {
			return false, perm.err
		}
		return last == nil, nil
	})
	if errors.Is(err, errPollTimeout) {
		return fmt.Errorf("%s not ready after %v: %w", p.name, timeout, last)
	}
	return err
}

// permanentError stops waitReady: waiting longer will not help.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
