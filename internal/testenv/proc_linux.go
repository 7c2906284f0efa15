package testenv

import (
	"os/exec"
	"syscall"
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
