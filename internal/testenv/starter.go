package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// serverLog is an XMPP server's log file, read from an offset so that a test
// waits only for lines written after the moment it cares about. Prosody and
// Ejabberd embed it for the log methods of XMPPServer.
type serverLog struct {
	name string // for messages: "Prosody", "ejabberd"
	path string
}

// Log returns the whole log file.
func (l serverLog) Log() string { return l.logFrom(0) }

// LogOffset returns the current size of the log file.
func (l serverLog) LogOffset() int64 {
	fi, err := os.Stat(l.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (l serverLog) logFrom(offset int64) string {
	f, err := os.Open(l.path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// WaitForLog waits until a line containing substr is written to the log at
// or after offset (from LogOffset), and returns that line.
func (l serverLog) WaitForLog(t testing.TB, offset int64, substr string, timeout time.Duration) string {
	t.Helper()
	var line string
	err := poll(timeout, func() (bool, error) {
		for s := range strings.SplitSeq(l.logFrom(offset), "\n") {
			if strings.Contains(s, substr) {
				line = s
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("testenv: %s did not log %q within %v", l.name, substr, timeout)
	}
	return line
}

// tailOnFailure writes the end of the log to the test log when the test
// fails (unless the log was streamed live). Register it before the server
// starts: cleanups run last-in first-out, so it runs after the server stopped.
func (l serverLog) tailOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() && !Verbose() {
			t.Logf("testenv: %s log %s:\n%s", l.name, l.path, tail(l.path, 256<<10))
		}
	})
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// listening reports whether the server of info is ready: its log holds
// every line of wantLog (what it logs once it listens), and all its
// listeners accept TCP connections.
func listening(log string, info ServerInfo, wantLog ...string) error {
	for _, s := range wantLog {
		if !strings.Contains(log, s) {
			return fmt.Errorf("log has no %q yet", s)
		}
	}
	for _, addr := range []string{info.C2SAddr, info.ComponentAddr, info.S2SAddr} {
		if addr == "" {
			continue
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	return nil
}

// ports returns the port numbers of i's listeners; s2s is empty without
// federation.
func (i ServerInfo) ports() (c2s, component, s2s string) {
	_, c2s, _ = net.SplitHostPort(i.C2SAddr)
	_, component, _ = net.SplitHostPort(i.ComponentAddr)
	_, s2s, _ = net.SplitHostPort(i.S2SAddr)
	return c2s, component, s2s
}

// listeners are the ports a server is started on; s2s is zero without
// federation.
type listeners struct {
	c2s, component, s2s int
}

// writeFile writes a file only the test's user may read, or fails the test.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// makeDirs creates the directories names in dir.
func makeDirs(t testing.TB, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
}

// startOnFreePorts calls start with fresh ports, one free on each of the
// loopback addresses addrs, until it does not report errPortTaken, three
// times at most. Any other error fails the test.
func startOnFreePorts(t testing.TB, name string, addrs []string, start func(ports []int) error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := make([]int, len(addrs))
		for i, addr := range addrs {
			ports[i] = FreePortOn(t, addr)
		}
		err := start(ports)
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("testenv: %s: %v", name, err)
		}
		t.Logf("testenv: %s: %v; retrying on other ports", name, err)
	}
}

// addrDefault fills in and checks a server's listening address: 127.0.0.1
// by default, and only loopback (all traffic of the tests stays on
// 127.0.0.0/8).
func addrDefault(addr *string) error {
	if *addr == "" {
		*addr = loopback
	}
	a, err := netip.ParseAddr(*addr)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return fmt.Errorf("address %q: use an IPv4 loopback address (127.0.0.0/8)", *addr)
	}
	*addr = a.String()
	return nil
}

// accountDefaults fills in and checks the options Prosody and ejabberd share:
// the users' domain, the component's, the secret and the users' password.
func accountDefaults(domain, componentDomain, secret, password *string, users []string) error {
	if *domain == "" {
		*domain = "localhost"
	}
	if *componentDomain == "" {
		*componentDomain = "push." + *domain
	}
	if *password == "" {
		*password = "pass"
	}
	if *secret == "" {
		*secret = randomHex(16)
	}
	for _, d := range []string{*domain, *componentDomain} {
		if !domainRE.MatchString(d) {
			return fmt.Errorf("domain %q: use lower-case letters, digits, dots and hyphens", d)
		}
	}
	if *domain == *componentDomain {
		return fmt.Errorf("the component domain must differ from the users' domain %q", *domain)
	}
	for _, u := range users {
		if u == "" || strings.ContainsAny(u, "@/ \t\r\n\"'&<>:") {
			return fmt.Errorf("user name %q is not a simple localpart", u)
		}
	}
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// The placeholders of the operator files in deploy/.
const (
	placeholderComponent = "push.example.com"
	placeholderDomain    = "example.com"
	placeholderSecret    = "change-me"
)

// fillPlaceholders replaces the operator files' placeholders. quotedSecret
// is the secret as a string literal of the file's language: it replaces the
// quoted placeholder, and its inside a bare one. One pass with the longest
// placeholder first: "push.example.com" must become the component domain as
// a whole, not "push." + the users' domain, and a replacement is never
// scanned again (push.localhost contains localhost).
func fillPlaceholders(s, domain, componentDomain, quotedSecret string) string {
	return strings.NewReplacer(
		placeholderComponent, componentDomain,
		placeholderDomain, domain,
		`"`+placeholderSecret+`"`, quotedSecret,
		placeholderSecret, quotedSecret[1:len(quotedSecret)-1],
	).Replace(s)
}

// copyOperatorFile copies the operator file deploy/<deployDir>/name of this
// repository into dir, through edit: tests run exactly what operators
// install, with the placeholders filled in.
func copyOperatorFile(t testing.TB, deployDir, name, dir string, edit func(string) string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(RepoRoot(t), deployDir, name))
	if err != nil {
		t.Fatalf("testenv: operator file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(edit(string(src))), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// running is the process of a server that tests stop and start again;
// Prosody and Ejabberd embed it.
type running struct {
	mu   sync.Mutex
	proc *Process
}

func (r *running) set(p *Process) {
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
}

// CPUTime returns the CPU time the server's process has used since it
// started (Linux only): see Process.CPUTime.
func (r *running) CPUTime() (time.Duration, error) {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p == nil {
		return 0, errors.New("testenv: the server is not running")
	}
	return p.CPUTime()
}

func (r *running) stop() {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p != nil {
		p.Stop()
	}
}

// restart stops the process and runs start; t fails if start does. The
// server stays tied to the test that started it, so a subtest may restart
// a parent's server.
func (r *running) restart(t testing.TB, name string, start func() error) {
	t.Helper()
	r.stop()
	if err := start(); err != nil {
		t.Fatalf("testenv: restart %s: %v", name, err)
	}
}
