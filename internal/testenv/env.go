package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables that change how tests treat the servers.
const (
	// EnvRequireServers, when non-empty, turns "server not installed" from a
	// skip into a failure.
	EnvRequireServers = "JINGLEPUSH_REQUIRE_SERVERS"
	// EnvVerbose, when non-empty, streams server logs to the test log as they
	// are written instead of only on failure.
	EnvVerbose = "JINGLEPUSH_TEST_VERBOSE"
)

const modulePath = "github.com/jinglepush/jinglepush"

// Verbose reports whether EnvVerbose is set.
func Verbose() bool { return os.Getenv(EnvVerbose) != "" }

// RequireBinary returns the path of the program name, or skips the test when
// it is not installed (fails it when EnvRequireServers is set).
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		// Debian puts ejabberdctl in /usr/sbin, which a user's PATH may lack.
		path, err = exec.LookPath(filepath.Join("/usr/sbin", name))
	}
	if err == nil {
		return path
	}
	unavailable(t, "%s is not installed", name)
	return ""
}

// unavailable skips the test because something it needs is missing, or
// fails it when EnvRequireServers is set.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequireServers) != "" {
		t.Fatalf("testenv: %s, and %s is set", msg, EnvRequireServers)
	}
	t.Skipf("testenv: %s; skipping (set %s=1 to fail instead)", msg, EnvRequireServers)
}

// RepoRoot returns the directory holding jinglepush's go.mod. It walks up
// from the working directory (a package directory under go test) and falls
// back to this source file's location.
func RepoRoot(t testing.TB) string {
	t.Helper()
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isModuleRoot(filepath.Join(dir, "go.mod")) {
				return dir
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	t.Fatalf("testenv: no go.mod for %s above %v", modulePath, starts)
	return ""
}

func isModuleRoot(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(mod), `"`) == modulePath
		}
	}
	return false
}

// Eventually polls cond until it returns true, and fails the test with msg
// (formatted with args) if that does not happen within timeout. Use it for
// state that has no event to wait on; prefer a channel when there is one.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	if err := poll(timeout, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("testenv: timed out after %v waiting for "+msg, append([]any{timeout}, args...)...)
	}
}

// errPollTimeout is returned by poll when the deadline passes.
var errPollTimeout = errors.New("timed out")

// poll calls check with a short, growing interval until it reports done or
// an error, or until timeout passes.
func poll(timeout time.Duration, check func() (done bool, err error)) error {
	deadline := time.Now().Add(timeout)
	interval := 5 * time.Millisecond
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return errPollTimeout
		}
		time.Sleep(interval)
		interval = min(interval*2, 100*time.Millisecond)
	}
}

// LogWriter returns an io.Writer that sends each line written to it to
// t.Logf, prefixed with prefix. Lines written after the test's cleanup has
// started are dropped rather than logged, because testing panics on a log
// call after a test has finished. Give it to xmppclient.Config.Trace to see a
// client's traffic in the test log.
func LogWriter(t testing.TB, prefix string) *LineLogger {
	l := &LineLogger{t: t, prefix: prefix}
	t.Cleanup(l.flushAndClose)
	return l
}

// LineLogger is the writer returned by LogWriter.
type LineLogger struct {
	t       testing.TB
	prefix  string
	mu      sync.Mutex
	partial []byte
	closed  bool
}

func (l *LineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(p), nil
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.t.Logf("%s%s", l.prefix, l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *LineLogger) flushAndClose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.t.Logf("%s%s", l.prefix, l.partial)
		l.partial = nil
	}
	l.closed = true
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string { return quoteString(s, "\\%03d") }

// yamlString quotes s as a YAML double-quoted scalar.
func yamlString(s string) string { return quoteString(s, "\\x%02x") }

// quoteString puts s in double quotes, with a backslash before quotes and
// backslashes and control characters written with ctl (a format for the
// character's number).
func quoteString(s, ctl string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, ctl, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
