package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid is a live process (not gone, not a zombie
// waiting for a parent that does not reap).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// TestProcessGroupKilledAtCleanup starts a shell that forks a grandchild and
// checks that both die when the subtest that started them ends.
func TestProcessGroupKilledAtCleanup(t *testing.T) {
	RequireBinary(t, "sh")
	var pids []int
	t.Run("start", func(t *testing.T) {
		// trap '' TERM: the shell ignores SIGTERM, so Stop has to escalate.
		cmd := exec.Command("sh", "-c", `trap '' TERM; sleep 300 & echo $!; wait`)
		p := StartProcess(t, "sh", cmd)
		p.grace = 100 * time.Millisecond
		pids = append(pids, p.Pid())
		Eventually(t, 5*time.Second, func() bool {
			f := strings.Fields(p.Output())
			if len(f) == 0 {
				return false
			}
			child, err := strconv.Atoi(f[0])
			if err != nil {
				return false
			}
			pids = append(pids, child)
			return true
		}, "the shell to print its child's pid")
		for _, pid := range pids {
			if !alive(pid) {
				t.Fatalf("pid %d not running", pid)
			}
		}
	})
	if len(pids) != 2 {
		t.Fatalf("pids %v", pids)
	}
	// The shell was reaped by Stop; its child got SIGKILL and dies moments
	// later.
	for _, pid := range pids {
		Eventually(t, 5*time.Second, func() bool { return !alive(pid) }, "pid %d to die after the test's cleanup", pid)
	}
}

// TestProcessDiesWithTestBinary runs this test binary as a helper that starts
// a process and exits without running any cleanup, as a crashed or timed-out
// test would. Pdeathsig must take the process down.
func TestProcessDiesWithTestBinary(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") == "crash" {
		p := StartProcess(t, "sleep", exec.Command("sleep", "300"))
		fmt.Println("PID", p.Pid())
		os.Exit(3) // no cleanup runs
	}
	pid, _ := strconv.Atoi(crashHelper(t, "TestProcessDiesWithTestBinary", "crash")["PID"])
	if pid == 0 {
		t.Fatal("helper printed no pid")
	}
	Eventually(t, 5*time.Second, func() bool { return !alive(pid) }, "sleep (pid %d) to die with its parent", pid)
}

// crashHelper runs this test binary's test name with TESTENV_HELPER=mode:
// the test then starts something, prints "KEY value" lines and exits without
// running any cleanup, as a crashed or timed-out test does. It returns the
// printed values by key.
func crashHelper(t *testing.T, name, mode string) map[string]string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(self, "-test.run=^"+name+"$")
	helper.Env = append(os.Environ(), "TESTENV_HELPER="+mode)
	out, err := helper.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	values := make(map[string]string)
	for l := range strings.SplitSeq(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			values[k] = v
		}
	}
	return values
}
