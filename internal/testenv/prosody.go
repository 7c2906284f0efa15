package testenv

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Operator files copied from deploy/prosody, and the placeholders in them.
const (
	prosodyDeployDir     = "deploy/prosody"
	prosodyDeployConfig  = "jinglepush.cfg.lua"
	prosodyDeployRules   = "jinglepush.pfw"
	placeholderComponent = "push.example.com"
	placeholderDomain    = "example.com"
	placeholderSecret    = "change-me"
)

// ProsodyHibernationLog is what Prosody 0.12 and 13 (mod_smacks) log, at
// debug level, when a session with XEP-0198 resumption loses its connection
// and is kept hibernating. Wait for it with WaitForLog before counting on the
// session being hibernated.
const ProsodyHibernationLog = "Session going into hibernation"

// ProsodyOptions configure StartProsody. The zero value is usable.
type ProsodyOptions struct {
	// Domain is the users' domain; default "localhost".
	Domain string
	// ComponentDomain is jinglepush's component JID; default
	// "push.localhost".
	ComponentDomain string
	// Secret is the component secret; default: random.
	Secret string
	// Users are registered before the server starts, as user@Domain.
	Users []string
	// Password of every user in Users; default "pass".
	Password string
	// SmacksHibernation sets smacks_hibernation_time (whole seconds,
	// rounded up); zero keeps Prosody's default of 600 s.
	SmacksHibernation time.Duration
	// ExtraLua lines are added to the global section of prosody.cfg.lua,
	// e.g. `push_notification_with_body = true`.
	ExtraLua []string
}

// Prosody is a Prosody server run for one test. It loads the operator files
// deploy/prosody/jinglepush.cfg.lua and jinglepush.pfw with their
// placeholders filled in, so tests exercise exactly what operators install.
type Prosody struct {
	ServerInfo
	// Dir holds the config, data, pid file and log.
	Dir string
	// ConfigPath is the generated prosody.cfg.lua.
	ConfigPath string
	// LogPath is the log file (debug level).
	LogPath string

	t    testing.TB
	bin  string
	ctl  string
	opts ProsodyOptions

	mu   sync.Mutex
	proc *Process
}

var _ XMPPServer = (*Prosody)(nil)

var domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

// StartProsody renders a configuration in a temporary directory, registers
// opts.Users, starts `prosody -F` on free loopback ports and waits until both
// the c2s and the component listener are up. The server is stopped at
// cleanup, and its log is written to the test log if the test fails. The test
// is skipped if Prosody is not installed (see EnvRequireServers).
func StartProsody(t testing.TB, opts ProsodyOptions) *Prosody {
	t.Helper()
	bin := RequireBinary(t, "prosody")
	ctl := RequireBinary(t, "prosodyctl")
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	p := &Prosody{
		ServerInfo: ServerInfo{
			Software:        "prosody",
			Domain:          opts.Domain,
			ComponentDomain: opts.ComponentDomain,
			Secret:          opts.Secret,
			Password:        opts.Password,
		},
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "prosody.cfg.lua"),
		LogPath:    filepath.Join(dir, "prosody.log"),
		t:          t,
		bin:        bin,
		ctl:        ctl,
		opts:       opts,
	}
	for _, d := range []string{"data", "certs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	root := RepoRoot(t)
	for _, name := range []string{prosodyDeployConfig, prosodyDeployRules} {
		src, err := os.ReadFile(filepath.Join(root, prosodyDeployDir, name))
		if err != nil {
			t.Fatalf("testenv: operator file: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fillPlaceholders(string(src), opts)), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	// Runs after the process is stopped (cleanups run last-in first-out).
	t.Cleanup(func() {
		if t.Failed() && !Verbose() {
			t.Logf("testenv: Prosody log %s:\n%s", p.LogPath, tail(p.LogPath, 256<<10))
		}
	})

	for attempt := 0; ; attempt++ {
		c2s, comp := FreePort(t), FreePort(t)
		p.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c2s))
		p.ComponentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(comp))
		if err := os.WriteFile(p.ConfigPath, []byte(renderProsodyConfig(opts, dir, c2s, comp, Verbose())), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if attempt == 0 {
			for _, u := range opts.Users {
				p.Register(t, u, opts.Password)
			}
		}
		err := p.start()
		if err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) || attempt == 2 {
			t.Fatalf("testenv: prosody: %v", err)
		}
		t.Logf("testenv: prosody: %v; retrying on other ports", err)
	}
	if errs := p.LogErrors(); len(errs) > 0 {
		t.Logf("testenv: Prosody logged errors while starting:\n%s", strings.Join(errs, "\n"))
	}
	return p
}

func (o ProsodyOptions) withDefaults() (ProsodyOptions, error) {
	if o.Domain == "" {
		o.Domain = "localhost"
	}
	if o.ComponentDomain == "" {
		o.ComponentDomain = "push." + o.Domain
	}
	if o.Password == "" {
		o.Password = "pass"
	}
	if o.Secret == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		o.Secret = hex.EncodeToString(b[:])
	}
	for _, d := range []string{o.Domain, o.ComponentDomain} {
		if !domainRE.MatchString(d) {
			return o, fmt.Errorf("domain %q: use lower-case letters, digits, dots and hyphens", d)
		}
	}
	if o.Domain == o.ComponentDomain {
		return o, fmt.Errorf("the component domain must differ from the users' domain %q", o.Domain)
	}
	for _, u := range o.Users {
		if u == "" || strings.ContainsAny(u, "@/ \t\r\n\"'&<>:") {
			return o, fmt.Errorf("user name %q is not a simple localpart", u)
		}
	}
	return o, nil
}

// fillPlaceholders replaces the operator files' placeholders. One pass with
// the longest placeholder first: "push.example.com" must become the component
// domain as a whole, not "push." + the users' domain, and a replacement is
// never scanned again (push.localhost contains localhost).
func fillPlaceholders(s string, o ProsodyOptions) string {
	secret := luaString(o.Secret)
	return strings.NewReplacer(
		placeholderComponent, o.ComponentDomain,
		placeholderDomain, o.Domain,
		// The secret sits inside a Lua string literal: replace the literal.
		`"`+placeholderSecret+`"`, secret,
		placeholderSecret, secret[1:len(secret)-1],
	).Replace(s)
}

// renderProsodyConfig writes the main config: loopback listeners on the
// given ports, no TLS, no s2s, and the operator file included at the end as
// its comments tell operators to do.
func renderProsodyConfig(o ProsodyOptions, dir string, c2sPort, componentPort int, consoleLog bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("-- Generated by internal/testenv for one test run. Not a production config.")
	if os.Geteuid() == 0 {
		w("run_as_root = true")
	}
	w("pidfile = %s", luaString(filepath.Join(dir, "prosody.pid")))
	w("data_path = %s", luaString(filepath.Join(dir, "data")))
	w("certificates = %s", luaString(filepath.Join(dir, "certs")))
	w("plugin_paths = { }")
	w("log = {")
	w("\t{ levels = { min = \"debug\" }, to = \"file\", filename = %s };", luaString(filepath.Join(dir, "prosody.log")))
	if consoleLog {
		w("\t{ levels = { min = \"debug\" }, to = \"console\" };")
	}
	w("}")
	w("interfaces = { \"127.0.0.1\" }")
	w("c2s_ports = { %d }", c2sPort)
	w("component_interfaces = { \"127.0.0.1\" }")
	w("component_ports = { %d }", componentPort)
	w("modules_disabled = { \"s2s\" }")
	w("c2s_require_encryption = false")
	w("allow_unencrypted_plain_auth = true")
	w("authentication = \"internal_plain\"")
	w("storage = \"internal\"")
	w("modules_enabled = { \"roster\"; \"saslauth\"; \"disco\"; \"ping\"; }")
	if o.SmacksHibernation > 0 {
		w("smacks_hibernation_time = %d", int(math.Ceil(o.SmacksHibernation.Seconds())))
	}
	for _, l := range o.ExtraLua {
		w("%s", l)
	}
	w("")
	w("VirtualHost %s", luaString(o.Domain))
	w("")
	w("Include %s", luaString(prosodyDeployConfig))
	return b.String()
}

func (p *Prosody) start() error {
	offset := p.LogOffset()
	cmd := exec.Command(p.bin, "--config", p.ConfigPath, "-F")
	cmd.Dir = p.Dir
	proc, err := startProcess(p.t, "prosody", cmd)
	if err != nil {
		return err
	}
	_, c2sPort, _ := net.SplitHostPort(p.C2SAddr)
	_, compPort, _ := net.SplitHostPort(p.ComponentAddr)
	wantLog := []string{
		"Activated service 'c2s' on [127.0.0.1]:" + c2sPort,
		"Activated service 'component' on [127.0.0.1]:" + compPort,
	}
	err = waitReady(proc, startTimeout, func() error {
		// Prosody keeps running when it cannot bind a port, and a dial
		// would then reach whoever holds it: trust the log first.
		log := p.logFrom(offset)
		if strings.Contains(log, "Failed to open server port") {
			return permanentError{errPortTaken}
		}
		for _, s := range wantLog {
			if !strings.Contains(log, s) {
				return fmt.Errorf("log has no %q yet", s)
			}
		}
		for _, addr := range []string{p.C2SAddr, p.ComponentAddr} {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			_ = c.Close()
		}
		return nil
	})
	if err != nil {
		proc.Stop()
		if errors.Is(err, errPortTaken) {
			return err
		}
		return fmt.Errorf("%w\n%s\nlog:\n%s", err, proc.Output(), p.logFrom(offset))
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()
	return nil
}

// Register creates user@Domain with prosodyctl; it works whether or not the
// server runs.
func (p *Prosody) Register(t testing.TB, user, password string) {
	t.Helper()
	Run(t, p.ctl, "--config", p.ConfigPath, "register", user, p.Domain, password)
}

// Stop stops Prosody with SIGTERM, which it handles as a clean shutdown
// (hibernated sessions are destroyed, their queues go to offline storage).
func (p *Prosody) Stop() {
	p.mu.Lock()
	proc := p.proc
	p.mu.Unlock()
	if proc != nil {
		proc.Stop()
	}
}

// Restart stops Prosody and starts it again on the same ports and data
// directory; t is failed if that does not work. The server stays tied to the
// test that started it, so a subtest may restart a parent's server.
func (p *Prosody) Restart(t testing.TB) {
	t.Helper()
	p.Stop()
	if err := p.start(); err != nil {
		t.Fatalf("testenv: restart prosody: %v", err)
	}
}

// Log returns the whole log file.
func (p *Prosody) Log() string { return p.logFrom(0) }

// LogOffset returns the current size of the log file.
func (p *Prosody) LogOffset() int64 {
	fi, err := os.Stat(p.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (p *Prosody) logFrom(offset int64) string {
	f, err := os.Open(p.LogPath)
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

// LogErrors returns the log lines at level error. Prosody's file log lines
// are "date time source<TAB>level<TAB>message".
func (p *Prosody) LogErrors() []string {
	var errs []string
	s := bufio.NewScanner(strings.NewReader(p.Log()))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if f := strings.SplitN(s.Text(), "\t", 3); len(f) == 3 && f[1] == "error" {
			errs = append(errs, s.Text())
		}
	}
	return errs
}

// WaitForLog waits until a line containing substr is written to the log at
// or after offset (from LogOffset), and returns that line.
func (p *Prosody) WaitForLog(t testing.TB, offset int64, substr string, timeout time.Duration) string {
	t.Helper()
	var line string
	err := poll(timeout, func() (bool, error) {
		for l := range strings.SplitSeq(p.logFrom(offset), "\n") {
			if strings.Contains(l, substr) {
				line = l
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("testenv: Prosody did not log %q within %v", substr, timeout)
	}
	return line
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
