package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 30 * time.Second

// errPortTaken means a server could not bind its port; the starters retry
// with other ports.
var errPortTaken = errors.New("port already in use")

// Redis is a redis-server run for one test, without persistence.
type Redis struct {
	// Addr is host:port of the server (127.0.0.1).
	Addr string
	// Dir is its working directory.
	Dir string

	t    testing.TB
	bin  string
	proc *Process
}

// StartRedis starts redis-server on a free loopback port and waits until it
// answers PING. It is stopped at cleanup. The test is skipped if redis-server
// is not installed (see EnvRequireServers).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: RequireBinary(t, "redis-server"), Dir: t.TempDir()}
	var err error
	for range 3 {
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		if err = r.start(); !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		t.Fatalf("testenv: redis-server: %v", err)
	}
	return r
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command(r.bin,
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", r.Dir,
		"--daemonize", "no", "--logfile", "")
	p, err := startProcess(r.t, "redis", cmd)
	if err != nil {
		return err
	}
	err = waitReady(p, startTimeout, func() error { return redisPing(r.Addr) })
	if err != nil {
		p.Stop()
		if strings.Contains(p.Output(), "Address already in use") {
			return errPortTaken
		}
		return fmt.Errorf("%w\n%s", err, p.Output())
	}
	r.proc = p
	return nil
}

// Stop stops the server, e.g. to test what happens while Redis is down.
func (r *Redis) Stop() { r.proc.Stop() }

// Restart stops the server if it runs and starts it again on the same port;
// t is failed if that does not work. Its data is lost (no persistence).
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.proc.Stop()
	if err := r.start(); err != nil {
		t.Fatalf("testenv: restart redis-server: %v", err)
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
