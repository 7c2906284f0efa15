//go:build unix && !linux

package testenv

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// sysProcAttr puts the child in its own process group. Outside Linux there is
// no Pdeathsig: a crashed test binary can leave servers running.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// CPUTime is only implemented on Linux.
func (p *Process) CPUTime() (time.Duration, error) {
	return 0, errors.New("testenv: CPU time of a process: Linux only")
}
