package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM before it is
// killed.
const stopGrace = 10 * time.Second

// Process is a child process tied to a test. It runs in its own process
// group; Stop, and the test's cleanup, signal the whole group. On Linux the
// kernel also kills it if the test binary dies (Pdeathsig).
type Process struct {
	name  string
	cmd   *exec.Cmd
	out   *output
	done  chan struct{}
	err   error // from Wait, valid once done is closed
	stop  sync.Once
	grace time.Duration // between SIGTERM and SIGKILL
}

// StartProcess starts cmd as a Process named name (the prefix of its output
// lines). Its stdout and stderr stream to the test log when EnvVerbose is
// set; otherwise the last 256 KiB are kept and logged if the test fails.
// The process is stopped at cleanup.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := startProcess(t, name, cmd)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

func startProcess(t testing.TB, name string, cmd *exec.Cmd) (*Process, error) {
	out := &output{max: 256 << 10}
	if Verbose() {
		out.live = LogWriter(t, name+": ")
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	// Bounds Wait if a grandchild keeps the output pipe open.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, out: out, done: make(chan struct{}), grace: stopGrace}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() && !Verbose() {
			if o := p.Output(); o != "" {
				t.Logf("testenv: output of %s (%s):\n%s", name, p.exitStatus(), o)
			}
		}
	})
	return p, nil
}

// Stop sends SIGTERM to the process group, waits for the process to exit,
// and kills the group if it takes longer than ten seconds. It is safe to
// call more than once.
func (p *Process) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.done:
		default:
			signalGroup(p.cmd, sigTerm)
			t := time.NewTimer(p.grace)
			select {
			case <-p.done:
			case <-t.C:
				signalGroup(p.cmd, sigKill)
				<-p.done
			}
			t.Stop()
		}
		// Anything the process left in its group goes too.
		signalGroup(p.cmd, sigKill)
	})
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the error from waiting for the process (nil for a clean exit),
// or nil while it runs.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process wrote to stdout and stderr (the last 256
// KiB).
func (p *Process) Output() string { return p.out.String() }

func (p *Process) exitStatus() string {
	select {
	case <-p.done:
		if p.err != nil {
			return "exited: " + p.err.Error()
		}
		return "exited"
	default:
		return "running"
	}
}

// Run runs a short command to completion, logs its command line and output
// with t.Logf, and fails the test if it fails or runs longer than two
// minutes. It returns the combined output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runCommand(name, args...)
	t.Logf("testenv: $ %s %s\n%s", name, strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("testenv: %s: %v", name, err)
	}
	return out
}

func runCommand(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { signalGroup(cmd, sigKill); return nil }
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// output collects a process's output: the tail in memory, and every line to
// live when it is set.
type output struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	live *LineLogger
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf = append(o.buf, p...)
	if over := len(o.buf) - o.max; over > 0 {
		o.buf = o.buf[:copy(o.buf, o.buf[over:])]
	}
	o.mu.Unlock()
	if o.live != nil {
		return o.live.Write(p)
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}
