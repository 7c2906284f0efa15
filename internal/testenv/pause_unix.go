//go:build unix

package testenv

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

const (
	canPause = true
	sigStop  = syscall.SIGSTOP
	sigCont  = syscall.SIGCONT
)

// waitStopped waits until p is stopped by a signal (stopped) or no longer is,
// as /proc reports, so that a test acts on a server that is really paused.
// Without /proc it returns at once: the signal was sent, which is close.
func waitStopped(p *Process, stopped bool) {
	_ = poll(5*time.Second, func() (bool, error) {
		select {
		case <-p.Done():
			return true, nil
		default:
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			return true, nil
		}
		// "pid (comm) S ...": the state follows the last ')'; T is stopped.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			return true, nil
		}
		return (s[i+2] == 'T') == stopped, nil
	})
}
