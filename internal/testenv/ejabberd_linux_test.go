package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// processesInGroup returns the live processes of process group pgid.
func processesInGroup(pgid int) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, stat := range dirs {
		b, err := os.ReadFile(stat)
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ...": fields after the last ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 3 || f[0] == "Z" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(stat)))
		pids = append(pids, pid)
	}
	return pids
}

// epmds returns the pids of the epmd processes running now.
func epmds() map[int]bool {
	m := make(map[int]bool)
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, comm := range dirs {
		if b, err := os.ReadFile(comm); err == nil && strings.TrimSpace(string(b)) == "epmd" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(comm)))
			m[pid] = true
		}
	}
	return m
}

// TestEjabberdLeavesNothing: the node and everything it starts end with the
// test, no epmd is started, and a test binary that dies without cleanup
// takes the node with it (Pdeathsig on the beam itself: no shell between).
func TestEjabberdLeavesNothing(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") == "ejabberd" {
		e := StartEjabberd(t, EjabberdOptions{})
		fmt.Println("PID", e.proc.Pid())
		fmt.Println("DIR", e.Dir)
		os.Exit(3) // no cleanup runs
	}
	before := epmds()
	var pid int
	t.Run("run", func(t *testing.T) {
		e := StartEjabberd(t, EjabberdOptions{Users: []string{"alice"}})
		pid = e.proc.Pid()
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); !strings.HasPrefix(string(comm), "beam") {
			t.Errorf("the test's child is %q, not the Erlang VM", comm)
		}
		if len(processesInGroup(pid)) == 0 {
			t.Error("no process in the node's group")
		}
		e.Restart(t)
		pid = e.proc.Pid()
	})
	if pid == 0 {
		t.FailNow()
	}
	Eventually(t, 5*time.Second, func() bool { return len(processesInGroup(pid)) == 0 }, "the node's process group to end")
	for p := range epmds() {
		if !before[p] {
			t.Errorf("an epmd (pid %d) was started", p)
		}
	}

	values := crashHelper(t, "TestEjabberdLeavesNothing", "ejabberd")
	if dir := values["DIR"]; filepath.IsAbs(dir) {
		// t.TempDir's parent, which the helper's cleanup would have removed.
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(dir)) })
	}
	pid, _ = strconv.Atoi(values["PID"])
	if pid == 0 {
		t.Fatalf("helper printed no pid: %v", values)
	}
	Eventually(t, 10*time.Second, func() bool { return len(processesInGroup(pid)) == 0 }, "the node of a crashed test binary to die")
}
