package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// sysProcAttr puts the child in its own process group, so that it and
// anything it forks can be signalled together, and asks the kernel to kill it
// when its parent dies: t.Cleanup does not run when the test binary crashes or
// is killed by go test's -timeout.
//
// Pdeathsig fires when the OS thread that started the child exits, not the
// process. The Go runtime only ends a thread when a goroutine locked to it
// (runtime.LockOSThread) returns without unlocking; nothing in a test
// starting a server does that, so in practice this means "when the test binary
// exits".
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	// A negative pid signals the process group (Setpgid made pgid == pid).
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// CPUTime returns the CPU time (user and system, all threads) the process
// has used so far, from /proc/<pid>/stat; the resolution is 10 ms (the
// kernel counts in USER_HZ = 100 ticks a second on every architecture).
func (p *Process) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ...": utime and stime are fields 14 and 15, the
	// 12th and 13th after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("testenv: short /proc/%d/stat", p.Pid())
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("testenv: /proc/%d/stat: %w", p.Pid(), err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
