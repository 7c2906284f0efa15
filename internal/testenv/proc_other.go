//go:build !unix

package testenv

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

type signal int

const (
	sigTerm signal = iota
	sigKill
)

// sysProcAttr: no process groups here; only the process itself is killed.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(cmd *exec.Cmd, _ signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// CPUTime is only implemented on Linux.
func (p *Process) CPUTime() (time.Duration, error) {
	return 0, errors.New("testenv: CPU time of a process: Linux only")
}
