package testenv

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Operator files copied from deploy/prosody.
const (
	prosodyDeployDir    = "deploy/prosody"
	prosodyDeployConfig = "jinglepush.cfg.lua"
	prosodyDeployRules  = "jinglepush.pfw"
	// prosodyDeployModule goes into a plugin_paths folder.
	prosodyDeployModule = "mod_jinglepush_nobounce.lua"
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
	// Addr is the loopback address all listeners bind; default 127.0.0.1.
	// Servers of one Federation may share an address or use one each
	// (127.0.0.2 and up are loopback too).
	Addr string
	// Federation, if set, makes the server a member: s2s (dialback without
	// TLS) on a free port of Addr, reaching the other members by domain.
	// Without it the server has no s2s at all.
	Federation *Federation
	// WithoutJinglepush leaves out the operator files: a plain server with
	// no component (ComponentAddr and ComponentDomain stay empty), as the
	// server of a caller on another domain is.
	WithoutJinglepush bool
}

// Prosody is a Prosody server run for one test. It loads the operator files
// deploy/prosody/jinglepush.cfg.lua and jinglepush.pfw with their
// placeholders filled in, so tests exercise exactly what operators install.
type Prosody struct {
	ServerInfo
	serverLog
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

	running
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
	p.serverLog = serverLog{name: "Prosody", path: p.LogPath}
	makeDirs(t, dir, "data", "certs", "plugins")
	if opts.Federation != nil {
		writeFile(t, filepath.Join(dir, "plugins", prosodyS2SModule+".lua"), prosodyS2SModuleSource)
	}
	if opts.WithoutJinglepush {
		p.ComponentDomain, p.Secret = "", ""
	} else {
		for _, name := range []string{prosodyDeployConfig, prosodyDeployRules} {
			copyOperatorFile(t, prosodyDeployDir, name, dir, func(s string) string {
				return fillPlaceholders(s, opts.Domain, opts.ComponentDomain, luaString(opts.Secret))
			})
		}
		copyOperatorFile(t, prosodyDeployDir, prosodyDeployModule, filepath.Join(dir, "plugins"), func(s string) string { return s })
	}
	p.tailOnFailure(t)
	registered := false
	addrs := []string{opts.Addr, opts.Addr}
	if opts.Federation != nil {
		addrs = append(addrs, opts.Addr)
	}
	startOnFreePorts(t, "prosody", addrs, func(ports []int) error {
		l := listeners{c2s: ports[0], component: ports[1]}
		p.C2SAddr = net.JoinHostPort(opts.Addr, strconv.Itoa(l.c2s))
		if !opts.WithoutJinglepush {
			p.ComponentAddr = net.JoinHostPort(opts.Addr, strconv.Itoa(l.component))
		}
		if opts.Federation != nil {
			l.s2s = ports[2]
			p.S2SAddr = net.JoinHostPort(opts.Addr, strconv.Itoa(l.s2s))
			if err := opts.Federation.join(opts.Domain, netip.MustParseAddrPort(p.S2SAddr), p); err != nil {
				t.Fatalf("testenv: %v", err)
			}
		}
		writeFile(t, p.ConfigPath, renderProsodyConfig(opts, dir, l, Verbose()))
		if !registered {
			for _, u := range opts.Users {
				p.Register(t, u, opts.Password)
			}
			registered = true
		}
		return p.start()
	})
	if errs := p.LogErrors(); len(errs) > 0 {
		t.Logf("testenv: Prosody logged errors while starting:\n%s", strings.Join(errs, "\n"))
	}
	return p
}

func (o ProsodyOptions) withDefaults() (ProsodyOptions, error) {
	if err := addrDefault(&o.Addr); err != nil {
		return o, err
	}
	err := accountDefaults(&o.Domain, &o.ComponentDomain, &o.Secret, &o.Password, o.Users)
	return o, err
}

// The test's own Prosody module that points s2s at the federation's peers.
const prosodyS2SModule = "mod_testenv_s2s"

//go:embed mod_testenv_s2s.lua
var prosodyS2SModuleSource string

// renderProsodyConfig writes the main config: listeners on o.Addr and the
// given ports, no TLS, s2s only with a federation (dialback, encryption not
// required), and the operator file included at the end as its comments tell
// operators to do.
func renderProsodyConfig(o ProsodyOptions, dir string, l listeners, consoleLog bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("-- Generated by internal/testenv for one test run. Not a production config.")
	if os.Geteuid() == 0 {
		w("run_as_root = true")
	}
	w("pidfile = %s", luaString(filepath.Join(dir, "prosody.pid")))
	w("data_path = %s", luaString(filepath.Join(dir, "data")))
	w("certificates = %s", luaString(filepath.Join(dir, "certs")))
	w("plugin_paths = { %s }", luaString(filepath.Join(dir, "plugins")))
	w("log = {")
	w("\t{ levels = { min = \"debug\" }, to = \"file\", filename = %s };", luaString(filepath.Join(dir, "prosody.log")))
	if consoleLog {
		w("\t{ levels = { min = \"debug\" }, to = \"console\" };")
	}
	w("}")
	addr := luaString(o.Addr)
	w("interfaces = { %s }", addr)
	w("c2s_ports = { %d }", l.c2s)
	w("component_interfaces = { %s }", addr)
	w("component_ports = { %d }", l.component)
	modules := `"roster"; "saslauth"; "disco"; "ping";`
	if o.Federation == nil {
		w("modules_disabled = { \"s2s\" }")
	} else {
		// Dialback authenticates servers without certificates; nothing
		// offers TLS (no mod_tls, no certificates), so none may be required.
		w("s2s_interfaces = { %s }", addr)
		w("s2s_ports = { %d }", l.s2s)
		w("s2s_require_encryption = false")
		w("s2s_secure_auth = false")
		w("testenv_s2s_peers = %s", luaString(o.Federation.PeersFile))
		modules += ` "dialback"; "testenv_s2s";`
	}
	w("c2s_require_encryption = false")
	w("allow_unencrypted_plain_auth = true")
	w("authentication = \"internal_plain\"")
	w("storage = \"internal\"")
	w("modules_enabled = { %s }", modules)
	if o.SmacksHibernation > 0 {
		w("smacks_hibernation_time = %d", int(math.Ceil(o.SmacksHibernation.Seconds())))
	}
	for _, l := range o.ExtraLua {
		w("%s", l)
	}
	w("")
	w("VirtualHost %s", luaString(o.Domain))
	if o.WithoutJinglepush {
		// What a caller's client expects of its server.
		w("\tmodules_enabled = { \"smacks\"; \"carbons\"; \"mam\"; }")
	} else {
		w("")
		w("Include %s", luaString(prosodyDeployConfig))
	}
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
	c2sPort, compPort, s2sPort := p.ports()
	want := []string{"Activated service 'c2s' on [" + p.opts.Addr + "]:" + c2sPort}
	if compPort != "" {
		want = append(want, "Activated service 'component' on ["+p.opts.Addr+"]:"+compPort)
	}
	if s2sPort != "" {
		want = append(want, "Activated service 's2s' on ["+p.opts.Addr+"]:"+s2sPort)
	}
	err = waitReady(proc, startTimeout, func() error {
		// Prosody keeps running when it cannot bind a port, and a dial
		// would then reach whoever holds it: trust the log first.
		log := p.logFrom(offset)
		if strings.Contains(log, "Failed to open server port") {
			return permanentError{errPortTaken}
		}
		return listening(log, p.ServerInfo, want...)
	})
	if err != nil {
		proc.Stop()
		if errors.Is(err, errPortTaken) {
			return err
		}
		return fmt.Errorf("%w\n%s\nlog:\n%s", err, proc.Output(), p.logFrom(offset))
	}
	p.set(proc)
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
func (p *Prosody) Stop() { p.stop() }

// Restart stops Prosody and starts it again on the same ports and data
// directory; t is failed if that does not work. The server stays tied to the
// test that started it, so a subtest may restart a parent's server.
func (p *Prosody) Restart(t testing.TB) {
	t.Helper()
	p.restart(t, "prosody", p.start)
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
