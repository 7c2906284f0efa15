//go:build !unix

package testenv

import (
	"os/exec"
	"syscall"
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
