package testenv

import (
	"bufio"
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

// The operator file copied from deploy/ejabberd, and the lines of it the
// harness changes.
const (
	ejabberdDeployDir    = "deploy/ejabberd"
	ejabberdDeployConfig = "jinglepush.yml"
	// ejabberdDeployPort is the component listener's port in the file.
	ejabberdDeployPort = "port: 5347"
	// ejabberdDeployModuleConfig loads mod_jinglepush, and
	// ejabberdDeployModule is its source folder, which ejabberdctl
	// module_install compiles.
	ejabberdDeployModuleConfig = "mod_jinglepush.yml"
	ejabberdDeployContacts     = "jinglepush-contacts.yml"
	ejabberdDeployModule       = "mod_jinglepush"
	// ejabberdServiceLog is the module of the operator file that
	// mod_jinglepush replaces; the file tells operators to delete its lines.
	ejabberdServiceLog = "mod_service_log:"
	// ejabberdDeployIP is the component listener's address in the file.
	ejabberdDeployIP = `ip: "127.0.0.1"`
	// ejabberdNotifyOn is the mod_push option that 23.01 does not know; the
	// file tells 23.01 operators to delete its line, and so does the harness.
	ejabberdNotifyOn = "notify_on:"
)

// EjabberdHibernationLog is what ejabberd 23.01 and 24.12 (mod_stream_mgmt)
// log, at info level, when a session with XEP-0198 resumption loses its
// connection and is kept waiting for the client to resume it ("Closing c2s
// connection for bob@localhost/phone: Connection failed: connection closed;
// waiting 300 seconds for stream resumption"). Wait for it with WaitForLog
// before counting on the session being hibernated.
const EjabberdHibernationLog = "seconds for stream resumption"

// EjabberdOptions configure StartEjabberd. The zero value is usable.
type EjabberdOptions struct {
	// Domain is the users' domain; default "localhost".
	Domain string
	// ComponentDomain is jinglepush's component JID; default
	// "push.localhost".
	ComponentDomain string
	// Secret is the component secret; default: random.
	Secret string
	// Users are registered once the server runs, as user@Domain.
	Users []string
	// Password of every user in Users; default "pass".
	Password string
	// ResumeTimeout sets mod_stream_mgmt's resume_timeout (whole seconds,
	// rounded up): how long a hibernated session waits for its client. Zero
	// keeps ejabberd's default of 300 s.
	ResumeTimeout time.Duration
	// MAM loads mod_mam with "default: always": every message is archived,
	// and mod_push publishes from the archive hook instead of the offline
	// one.
	MAM bool
	// Addr is the loopback address the c2s, component and s2s listeners
	// bind; default 127.0.0.1. (The node's own distribution port stays on
	// 127.0.0.1.)
	Addr string
	// Federation, if set, makes the server a member: s2s (dialback without
	// TLS) on a free port of Addr, reaching the other members by domain
	// through the federation's DNS server. Without it the server has no s2s
	// listener.
	Federation *Federation
	// JinglepushModule installs deploy/ejabberd/mod_jinglepush the way
	// ejabberd installs contributed modules (its sources under
	// CONTRIB_MODULES_PATH/sources, `ejabberdctl module_install`, which
	// compiles it in the running node), then restarts the node with
	// mod_jinglepush.yml instead of jinglepush.yml's mod_service_log, as
	// the files tell operators to. Without it: stock mod_service_log.
	JinglepushModule bool
	// Contacts includes jinglepush-contacts.yml: mod_privilege with the
	// roster "get" permission, for calls.ring_from = "contacts".
	Contacts bool
}

func (o EjabberdOptions) withDefaults() (EjabberdOptions, error) {
	if err := addrDefault(&o.Addr); err != nil {
		return o, err
	}
	err := accountDefaults(&o.Domain, &o.ComponentDomain, &o.Secret, &o.Password, o.Users)
	return o, err
}

// Ejabberd is an ejabberd node run for one test. Its ejabberd.yml includes
// the operator file deploy/ejabberd/jinglepush.yml with its placeholders
// filled in, the way the file's comments tell operators to include it, so
// tests exercise exactly what operators install.
//
// The node is the test's child process: `erl` started the way `ejabberdctl
// foreground` starts it, minus the shell in between, so that it gets the
// process group and parent-death signal of every testenv process. It runs
// as the test's user (root in CI), uses Erlang distribution without epmd
// (ERL_DIST_PORT: the node listens on a port of its own, on 127.0.0.1, and
// ejabberdctl connects to that port), and keeps its config, Mnesia spool and
// logs under the test's temporary directory. Nothing is left running and
// nothing is shared with other nodes on the machine.
type Ejabberd struct {
	ServerInfo
	serverLog
	// Dir holds conf/ (ejabberd.yml, jinglepush.yml, ejabberdctl.cfg,
	// inetrc), spool/ (Mnesia) and logs/.
	Dir string
	// ConfigPath is the generated ejabberd.yml.
	ConfigPath string
	// LogPath is ejabberd.log (info level, debug with EnvVerbose).
	LogPath string
	// Node is the Erlang node name, unique per run.
	Node string
	// Version is the ejabberd application's version, e.g. "23.01-1" or
	// "24.12-3~bpo12+1".
	Version string

	t        testing.TB
	erl      string
	ctl      string
	libs     string // ERL_LIBS, where Debian keeps ejabberd's code
	cookie   string
	distPort int
	opts     EjabberdOptions

	running
}

var _ XMPPServer = (*Ejabberd)(nil)

// StartEjabberd renders a configuration in a temporary directory, starts an
// ejabberd node on free loopback ports, waits until its c2s and component
// listeners are up, and registers opts.Users with `ejabberdctl register`.
// The node is stopped at cleanup, and its log is written to the test log if
// the test fails. The test is skipped if ejabberd is not installed (see
// EnvRequireServers).
//
// It needs root, like Debian's ejabberdctl (which otherwise switches to the
// ejabberd user, who cannot enter the test's temporary directory).
func StartEjabberd(t testing.TB, opts EjabberdOptions) *Ejabberd {
	t.Helper()
	ctl := RequireBinary(t, "ejabberdctl")
	erl := RequireBinary(t, "erl")
	if os.Geteuid() != 0 {
		unavailable(t, "ejabberdctl runs only as root (or as the ejabberd user, who cannot enter the test's temporary directory)")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	libs, version, err := ejabberdInstall(ctl)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	e := &Ejabberd{
		ServerInfo: ServerInfo{
			Software:        "ejabberd",
			Domain:          opts.Domain,
			ComponentDomain: opts.ComponentDomain,
			Secret:          opts.Secret,
			Password:        opts.Password,
		},
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "conf", "ejabberd.yml"),
		LogPath:    filepath.Join(dir, "logs", "ejabberd.log"),
		Node:       "jinglepush-" + randomHex(6) + "@localhost",
		Version:    version,
		t:          t,
		erl:        erl,
		ctl:        ctl,
		libs:       libs,
		cookie:     randomHex(16),
		opts:       opts,
	}
	e.serverLog = serverLog{name: "ejabberd", path: e.LogPath}
	makeDirs(t, dir, "conf", "spool", "logs")
	writeFile(t, filepath.Join(dir, "conf", "inetrc"), renderEjabberdInetrc(opts.Federation))
	e.tailOnFailure(t)
	start := time.Now()
	addrs := []string{opts.Addr, opts.Addr, loopback}
	if opts.Federation != nil {
		addrs = append(addrs, opts.Addr)
	}
	var l listeners
	startOnFreePorts(t, "ejabberd", addrs, func(ports []int) error {
		l = listeners{c2s: ports[0], component: ports[1]}
		e.C2SAddr = net.JoinHostPort(opts.Addr, strconv.Itoa(l.c2s))
		e.ComponentAddr = net.JoinHostPort(opts.Addr, strconv.Itoa(l.component))
		e.distPort = ports[2]
		if opts.Federation != nil {
			l.s2s = ports[3]
			e.S2SAddr = net.JoinHostPort(opts.Addr, strconv.Itoa(l.s2s))
			if err := opts.Federation.join(opts.Domain, netip.MustParseAddrPort(e.S2SAddr), e); err != nil {
				t.Fatalf("testenv: %v", err)
			}
		}
		copyOperatorFile(t, ejabberdDeployDir, ejabberdDeployConfig, filepath.Join(dir, "conf"), func(s string) string {
			return editEjabberdDeployConfig(s, opts, l.component, ejabberdHasNotifyOn(version))
		})
		if opts.Contacts {
			copyOperatorFile(t, ejabberdDeployDir, ejabberdDeployContacts, filepath.Join(dir, "conf"), func(s string) string {
				return fillPlaceholders(s, opts.Domain, opts.ComponentDomain, yamlString(opts.Secret))
			})
		}
		// With the module, the first start has neither mod_service_log nor
		// mod_jinglepush: ejabberd refuses a module it cannot find, and
		// module_install needs a running node.
		writeFile(t, e.ConfigPath, renderEjabberdConfig(opts, l, e.includes(false), Verbose()))
		writeFile(t, filepath.Join(dir, "conf", "ejabberdctl.cfg"), renderEjabberdctlConfig(e.Node, e.cookie, e.distPort))
		return e.start()
	})
	if opts.JinglepushModule {
		e.installModule(t, l)
	}
	t.Logf("testenv: ejabberd %s (node %s) ready in %v", version, e.Node, time.Since(start).Round(time.Millisecond))
	for _, u := range opts.Users {
		e.Register(t, u, opts.Password)
	}
	if errs := e.LogErrors(); len(errs) > 0 {
		t.Logf("testenv: ejabberd logged errors while starting:\n%s", strings.Join(errs, "\n"))
	}
	return e
}

// includes lists the operator files ejabberd.yml includes, in order:
// jinglepush.yml, and mod_jinglepush.yml once the module is installed.
func (e *Ejabberd) includes(moduleInstalled bool) []string {
	conf := filepath.Join(e.Dir, "conf")
	files := []string{filepath.Join(conf, ejabberdDeployConfig)}
	if moduleInstalled {
		files = append(files, filepath.Join(conf, ejabberdDeployModuleConfig))
	}
	if e.opts.Contacts {
		files = append(files, filepath.Join(conf, ejabberdDeployContacts))
	}
	return files
}

// installModule installs mod_jinglepush as an operator does: its sources
// into the contrib sources folder, `ejabberdctl module_install` on the
// running node, then mod_jinglepush.yml included and a restart on the same
// ports.
func (e *Ejabberd) installModule(t testing.TB, l listeners) {
	t.Helper()
	src := filepath.Join(RepoRoot(t), ejabberdDeployDir, ejabberdDeployModule)
	if err := os.CopyFS(filepath.Join(e.contribDir(), "sources", ejabberdDeployModule), os.DirFS(src)); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	Run(t, e.ctl, append(e.ctlArgs(), "module_install", ejabberdDeployModule)...)
	beam := filepath.Join(e.contribDir(), ejabberdDeployModule, "ebin", ejabberdDeployModule+".beam")
	if _, err := os.Stat(beam); err != nil {
		t.Fatalf("testenv: module_install left no %s: %v\nlog:\n%s", beam, err, e.Log())
	}
	conf := filepath.Join(e.Dir, "conf")
	copyOperatorFile(t, ejabberdDeployDir, ejabberdDeployModuleConfig, conf, func(s string) string {
		return fillPlaceholders(s, e.opts.Domain, e.opts.ComponentDomain, yamlString(e.opts.Secret))
	})
	writeFile(t, e.ConfigPath, renderEjabberdConfig(e.opts, l, e.includes(true), Verbose()))
	e.Restart(t)
}

// contribDir is the node's CONTRIB_MODULES_PATH, where ejabberd keeps the
// sources and the compiled code of contributed modules.
func (e *Ejabberd) contribDir() string { return filepath.Join(e.Dir, "contrib") }

// ejabberdInstall finds where Debian's ejabberd keeps its code (the ERL_LIBS
// its ejabberdctl sets) and the version of the ejabberd application there.
func ejabberdInstall(ctl string) (libs, version string, err error) {
	script, err := os.ReadFile(ctl)
	if err != nil {
		return "", "", err
	}
	m := regexp.MustCompile(`(?m)^\s*ERL_LIBS=['"]?([^'"\s]+)`).FindSubmatch(script)
	if m == nil {
		return "", "", fmt.Errorf("%s sets no ERL_LIBS: not Debian's ejabberdctl?", ctl)
	}
	libs = string(m[1])
	apps, _ := filepath.Glob(filepath.Join(libs, "ejabberd-*", "ebin", "ejabberd.app"))
	for _, app := range apps {
		b, err := os.ReadFile(app)
		if err != nil {
			continue
		}
		if v := regexp.MustCompile(`\{vsn,\s*"([^"]+)"\}`).FindSubmatch(b); v != nil {
			return libs, string(v[1]), nil
		}
	}
	return "", "", fmt.Errorf("no ejabberd application (ejabberd.app) under %s", libs)
}

// ejabberdHasNotifyOn reports whether the ejabberd of version knows mod_push's
// notify_on option, which came in 23.10.
func ejabberdHasNotifyOn(version string) bool {
	var year, month int
	if _, err := fmt.Sscanf(version, "%d.%d", &year, &month); err != nil {
		return true // a version we cannot read is a new one
	}
	return year > 23 || year == 23 && month >= 10
}

// renderEjabberdInetrc writes the node's resolver configuration: the names
// the node calls itself by stay on loopback, and with a federation the
// federation's DNS server is the only nameserver (resolv.conf is not read),
// so that ejabberd finds its peers and asks nobody else.
func renderEjabberdInetrc(f *Federation) string {
	s := "{lookup, [file, native]}.\n{host, {127,0,0,1}, [\"localhost\"]}.\n"
	if f != nil {
		dns := f.DNSAddr()
		a := dns.Addr().As4()
		s += fmt.Sprintf("{resolv_conf, []}.\n{nameserver, {%d,%d,%d,%d}, %d}.\n", a[0], a[1], a[2], a[3], dns.Port())
	}
	return s
}

// editEjabberdDeployConfig fills in the operator file's placeholders, its
// component port and address, and on ejabberd 23.01 deletes the notify_on
// line, as the file's comments tell operators to.
func editEjabberdDeployConfig(s string, o EjabberdOptions, componentPort int, notifyOn bool) string {
	s = fillPlaceholders(s, o.Domain, o.ComponentDomain, yamlString(o.Secret))
	s = strings.Replace(s, ejabberdDeployPort, "port: "+strconv.Itoa(componentPort), 1)
	if o.Addr != loopback {
		s = strings.Replace(s, ejabberdDeployIP, "ip: "+yamlString(o.Addr), 1)
	}
	var kept []string
	inServiceLog := false
	for l := range strings.SplitSeq(s, "\n") {
		trimmed := strings.TrimSpace(l)
		indent := len(l) - len(strings.TrimLeft(l, " "))
		switch {
		case o.JinglepushModule && trimmed == ejabberdServiceLog:
			inServiceLog = true
			continue
		case inServiceLog && trimmed != "" && indent > 2:
			continue // the module's options
		case !notifyOn && strings.HasPrefix(trimmed, ejabberdNotifyOn):
			continue
		}
		inServiceLog = false
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

// renderEjabberdConfig writes the main ejabberd.yml: a loopback c2s
// listener without TLS (PLAIN allowed), an s2s listener only with a
// federation (dialback, no STARTTLS), the modules a Debian installation
// loads that jinglepush relies on (mod_offline, mod_stream_mgmt with
// Debian's resend_on_timeout), no traffic shapers, and the operator file
// included at the end as its comments tell operators to (the includes, in
// order).
func renderEjabberdConfig(o EjabberdOptions, l listeners, includes []string, debug bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	level := "info"
	if debug {
		level = "debug"
	}
	w("# Generated by internal/testenv for one test run. Not a production config.")
	w("loglevel: %s", level)
	w("hosts:")
	w("  - %s", yamlString(o.Domain))
	w("listen:")
	w("  -")
	w("    port: %d", l.c2s)
	w("    ip: %s", yamlString(o.Addr))
	w("    module: ejabberd_c2s")
	w("    starttls: false")
	w("    starttls_required: false")
	w("    access: c2s")
	if o.Federation != nil {
		w("  -")
		w("    port: %d", l.s2s)
		w("    ip: %s", yamlString(o.Addr))
		w("    module: ejabberd_s2s_in")
		// Dialback authenticates servers without certificates.
		w("s2s_use_starttls: false")
		w("outgoing_s2s_families: [ipv4]")
		w("outgoing_s2s_ipv4_address: %s", yamlString(o.Addr))
	}
	w("auth_method: internal")
	w("acl:")
	w("  local:")
	w("    user_regexp: \"\"")
	w("access_rules:")
	w("  local:")
	w("    allow: local")
	w("  c2s:")
	w("    allow: all")
	w("modules:")
	for _, m := range []string{"mod_disco", "mod_roster", "mod_ping", "mod_carboncopy", "mod_offline"} {
		w("  %s: {}", m)
	}
	if o.Federation != nil {
		w("  mod_s2s_dialback: {}")
	}
	w("  mod_stream_mgmt:")
	w("    resend_on_timeout: if_offline")
	if o.ResumeTimeout > 0 {
		w("    resume_timeout: %d", int(math.Ceil(o.ResumeTimeout.Seconds())))
	}
	if o.MAM {
		w("  mod_mam:")
		w("    default: always")
	}
	w("include_config_file:")
	if len(includes) == 1 {
		w("  %s", yamlString(includes[0]))
	} else {
		for _, f := range includes {
			w("  - %s", yamlString(f))
		}
	}
	return b.String()
}

// renderEjabberdctlConfig writes the ejabberdctl.cfg that `ejabberdctl
// register` reads to reach the node: its name, its distribution port (no
// epmd), its cookie. EXEC_CMD keeps ejabberdctl from switching to the
// ejabberd user (the script reads this file after choosing, so the file
// can override the choice).
func renderEjabberdctlConfig(node, cookie string, distPort int) string {
	return fmt.Sprintf(`# Generated by internal/testenv for one test run.
ERLANG_NODE=%s
ERL_DIST_PORT=%d
ERL_EPMD_ADDRESS=127.0.0.1
ERL_OPTIONS="-setcookie %s"
EXEC_CMD=as_current_user
`, node, distPort, cookie)
}

// start runs the node and waits until both listeners accept connections.
func (e *Ejabberd) start() error {
	offset := e.LogOffset()
	conf := filepath.Join(e.Dir, "conf")
	spool := filepath.Join(e.Dir, "spool")
	// One log file that never rotates (offsets into it stay valid), and no
	// copy of it on the console unless it is to be streamed.
	logOpts := []string{"log_rotate_count", "0", "log_rotate_size", "infinity"}
	if !Verbose() {
		logOpts = append(logOpts, "quiet", "true")
	}
	args := []string{
		"-sname", e.Node, "-setcookie", e.cookie, "-noinput",
		// Distribution on 127.0.0.1 and on a port of its own: no epmd.
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-erl_epmd_port", strconv.Itoa(e.distPort), "-start_epmd", "false",
		"-mnesia", "dir", erlString(spool),
		// Idle schedulers do not spin: on a machine shared by parallel
		// tests that spinning burns CPU, and it would swamp the CPU time
		// per stanza that benchmarks read.
		"+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
	}
	args = append(append(append(args, "-ejabberd"), logOpts...), "-s", "ejabberd")
	cmd := exec.Command(e.erl, args...)
	cmd.Dir = spool
	cmd.Env = append(os.Environ(),
		"EJABBERD_CONFIG_PATH="+e.ConfigPath,
		"EJABBERD_LOG_PATH="+e.LogPath,
		"ERL_INETRC="+filepath.Join(conf, "inetrc"),
		"ERL_LIBS="+e.libs,
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_CRASH_DUMP_BYTES=0",
		"CONTRIB_MODULES_PATH="+e.contribDir(),
	)
	proc, err := startProcess(e.t, "ejabberd", cmd)
	if err != nil {
		return err
	}
	c2sPort, compPort, s2sPort := e.ports()
	addr := e.opts.Addr
	want := []string{
		"Start accepting TCP connections at " + addr + ":" + c2sPort + " for ejabberd_c2s",
		"Start accepting TCP connections at " + addr + ":" + compPort + " for ejabberd_service",
	}
	if s2sPort != "" {
		want = append(want, "Start accepting TCP connections at "+addr+":"+s2sPort+" for ejabberd_s2s_in")
	}
	err = waitReady(proc, startTimeout, func() error {
		return listening(e.logFrom(offset), e.ServerInfo, want...)
	})
	if err != nil {
		proc.Stop()
		// A taken listener port stops ejabberd ("Failed to open socket ...:
		// address already in use"); a taken distribution port stops the
		// node before ejabberd starts.
		out := e.logFrom(offset) + proc.Output()
		if strings.Contains(out, "eaddrinuse") || strings.Contains(out, "address already in use") {
			return errPortTaken
		}
		return fmt.Errorf("%w\n%s\nlog:\n%s", err, proc.Output(), e.logFrom(offset))
	}
	e.set(proc)
	return nil
}

// Register creates user@Domain with `ejabberdctl register`; the server must
// be running.
func (e *Ejabberd) Register(t testing.TB, user, password string) {
	t.Helper()
	Run(t, e.ctl, append(e.ctlArgs(), "register", user, e.Domain, password)...)
}

func (e *Ejabberd) ctlArgs() []string {
	conf := filepath.Join(e.Dir, "conf")
	return []string{
		"--config-dir", conf, "--config", e.ConfigPath,
		"--ctl-config", filepath.Join(conf, "ejabberdctl.cfg"),
		"--spool", filepath.Join(e.Dir, "spool"), "--logs", filepath.Join(e.Dir, "logs"),
	}
}

// Stop stops the node with SIGTERM, which it handles as a clean shutdown
// (sessions end, Mnesia is closed; hibernated sessions' queues go to offline
// storage).
func (e *Ejabberd) Stop() { e.stop() }

// Restart stops the node and starts it again on the same ports and spool
// (accounts, offline messages and push registrations survive); t is failed
// if that does not work.
func (e *Ejabberd) Restart(t testing.TB) {
	t.Helper()
	e.restart(t, "ejabberd", e.start)
}

// Eval evaluates the Erlang expression expr (without the final dot) in the
// running node and returns the result as Erlang prints it (~p). A short-lived
// hidden node does the call, the way ejabberdctl reaches the node (same
// distribution port, no listening, no epmd); t fails if that does not work.
func (e *Ejabberd) Eval(t testing.TB, expr string) string {
	t.Helper()
	probe := fmt.Sprintf(`{ok, T, _} = erl_scan:string(%s ++ "."), {ok, Es} = erl_parse:parse_exprs(T), `+
		`case rpc:call('%s', erl_eval, exprs, [Es, []]) of {value, V, _} -> io:format("~p", [V]); Err -> io:format("rpc failed: ~p", [Err]) end, halt().`,
		erlString(expr), e.Node)
	out, err := runCommand(e.erl, "-noshell", "-hidden", "-sname", "probe-"+randomHex(4), "-setcookie", e.cookie,
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-erl_epmd_port", strconv.Itoa(e.distPort), "-start_epmd", "false", "-dist_listen", "false",
		"-eval", probe)
	if err != nil || strings.HasPrefix(out, "rpc failed") {
		t.Fatalf("testenv: eval %s on %s: %v\n%s", expr, e.Node, err, out)
	}
	return out
}

// ejabberdLogEntry matches the first line of an ejabberd log entry:
// "2026-11-22 07:17:17.961538+00:00 [info] <0.124.0>@module:function/1:63 text".
var ejabberdLogEntry = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* \[(\w+)\] `)

// LogErrors returns the log entries at level error or critical, each with
// its continuation lines (ejabberd writes reports over several lines).
func (e *Ejabberd) LogErrors() []string {
	var errs []string
	in := false
	s := bufio.NewScanner(strings.NewReader(e.Log()))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		l := s.Text()
		if m := ejabberdLogEntry.FindStringSubmatch(l); m != nil {
			in = m[1] == "error" || m[1] == "critical"
			if in {
				errs = append(errs, l)
			}
			continue
		}
		if in && l != "" {
			errs[len(errs)-1] += "\n" + l
		}
	}
	return errs
}

// erlString quotes s as an Erlang string literal, for arguments that erl
// parses as terms.
func erlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
