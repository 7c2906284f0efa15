package main

// The end-to-end harness: the real jinglepush (run, as main calls it) against
// a real XMPP server, a real redis-server and a local HTTP/2 APNs, with
// XMPP clients for the users. Scenarios are written once against
// testenv.XMPPServer and run on every server the machine has.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

const (
	bundleID  = "com.example.chat"
	waitShort = 10 * time.Second
)

// servers is what a scenario runs against: one long-lived XMPP server and
// redis-server per kind of server, shared by its scenarios (each scenario
// has its own users, Redis key prefix, APNs fake and jinglepush).
type servers struct {
	xmpp  testenv.XMPPServer
	redis *testenv.Redis
	users atomic.Int64
	// hibernated is what the server logs when a XEP-0198 session loses its
	// connection and is kept for resumption.
	hibernated string

	// The Redis of the scenarios, when it is not redis: a cluster or a
	// Sentinel setup shared by the test binary (redis_kinds_test.go).
	cluster  *testenv.RedisCluster
	sentinel *testenv.RedisSentinel
	// only, when set, names the scenarios (subtests) to run on these
	// servers; newStack skips the others, and notes in ran those it ran.
	only []string
	mu   sync.Mutex
	ran  map[string]bool
}

// stackOptions vary the jinglepush config of a scenario.
type stackOptions struct {
	ringTimeout   time.Duration  // default 20s
	staleAfter    time.Duration  // default 30s
	process       bool           // run the built binary in a child process
	wakeOnPublish *bool          // default: the server guide's (Prosody off, ejabberd on)
	servedDomains []string       // default: the server's domain
	callsTOML     string         // more [calls] keys
	xmppTOML      string         // more [xmpp] keys
	redis         *testenv.Redis // a Redis of the scenario's own (for faults), instead of the shared one
	extraTOML     string
	// standby: the process starts as Prosody's hot standby, turned away
	// while another holds the component connection (start does not wait
	// for /readyz, only for that).
	standby bool
}

// stack is one scenario's jinglepush and its APNs fake.
type stack struct {
	t       *testing.T
	srv     *servers
	info    testenv.ServerInfo
	apns    *testenv.APNs
	cfgPath string
	http    string // host:port of /metrics
	prefix  string

	process bool
	standby bool

	mu      sync.Mutex
	running *instance
	last    *instance            // the instance stopped last, for its log
	clients []*xmppclient.Client // every login, for settle's barrier
	// peers are the other jinglepush processes of the scenario (newPeer):
	// the same component, Redis keys and APNs. settle waits for them too.
	peers []*stack
	main  *stack // of a peer: the stack it was made from
}

// instance is one running jinglepush: run() in this process, or the built
// binary in a child process (which a test can kill like an OOM killer would).
type instance struct {
	cancel context.CancelFunc // in-process
	cmd    *exec.Cmd          // child process
	done   chan int
	logs   *syncBuffer
}

var stackSeq atomic.Int64

func newStack(t *testing.T, srv *servers, opts stackOptions) *stack {
	t.Helper()
	srv.skipUnlisted(t)
	info := srv.xmpp.Info()
	s := &stack{
		t: t, srv: srv, info: info, apns: testenv.StartAPNs(t),
		http:    "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		prefix:  fmt.Sprintf("e2e%d:", stackSeq.Add(1)),
		process: opts.process,
	}
	if opts.ringTimeout == 0 {
		opts.ringTimeout = 20 * time.Second
	}
	if opts.staleAfter == 0 {
		opts.staleAfter = 30 * time.Second
	}
	wake := info.Software != "prosody"
	if opts.wakeOnPublish != nil {
		wake = *opts.wakeOnPublish
	}
	served := opts.servedDomains
	if served == nil {
		served = []string{info.Domain}
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "AuthKey_KEY1234567.p8")
	writeP8(t, keyFile)
	redisTOML := srv.redisTOML()
	if opts.redis != nil {
		redisTOML = fmt.Sprintf("addrs = [%q]", opts.redis.Addr)
	}
	cfg := fmt.Sprintf(`
[xmpp]
server = %q
domain = %q
secret = %q
served_domains = %s
reconnect_min = "50ms"
reconnect_max = "500ms"
%s

[redis]
%s
key_prefix = %q

[apns]
endpoint = %q
ca_file = %q

[[apns.apps]]
bundle_id = %q
team_id = "TEAM123456"
key_id = "KEY1234567"
key_file = %q

[calls]
ring_timeout = %q
stale_after = %q
wake_on_publish = %v
%s

[http]
listen = %q

[log]
level = "debug"
%s`, info.ComponentAddr, info.ComponentDomain, info.Secret, tomlList(served), opts.xmppTOML,
		redisTOML, s.prefix, s.apns.URL, s.apns.CAFile, bundleID, keyFile,
		opts.ringTimeout.String(), opts.staleAfter.String(), wake, opts.callsTOML, s.http, opts.extraTOML)
	s.cfgPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	s.start()
	return s
}

// newPeer starts another jinglepush process for s's scenario, as an
// operator runs several: the same config (component, Redis and key prefix,
// APNs) with an HTTP endpoint of its own, in a child process when s is
// one. A standby peer is one that Prosody turns away while s holds the
// component connection (stackOptions.standby).
func (s *stack) newPeer(standby bool) *stack {
	s.t.Helper()
	p := &stack{
		t: s.t, srv: s.srv, info: s.info, apns: s.apns, prefix: s.prefix,
		http:    "127.0.0.1:" + strconv.Itoa(testenv.FreePort(s.t)),
		process: s.process, standby: standby, main: s,
	}
	cfg, err := os.ReadFile(s.cfgPath)
	if err != nil {
		s.t.Fatal(err)
	}
	listen := fmt.Sprintf("listen = %q", s.http)
	if !bytes.Contains(cfg, []byte(listen)) {
		s.t.Fatalf("no %s in %s", listen, s.cfgPath)
	}
	cfg = bytes.Replace(cfg, []byte(listen), fmt.Appendf(nil, "listen = %q", p.http), 1)
	p.cfgPath = filepath.Join(s.t.TempDir(), "config.toml")
	if err := os.WriteFile(p.cfgPath, cfg, 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.peers = append(s.peers, p)
	s.mu.Unlock()
	s.t.Cleanup(p.stop)
	p.start()
	return p
}

func tomlList(l []string) string {
	q := make([]string, len(l))
	for i, v := range l {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeP8 writes a fresh APNs-style signing key (PKCS #8, P-256).
func writeP8(t *testing.T, path string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs jinglepush and waits until /readyz says it is connected (a
// standby: until the server has turned it away once).
func (s *stack) start() {
	s.t.Helper()
	in := &instance{done: make(chan int, 1), logs: &syncBuffer{}}
	if s.process {
		in = s.launch(s.cfgPath)
	} else {
		var ctx context.Context
		ctx, in.cancel = context.WithCancel(context.Background())
		go func() {
			in.done <- run(ctx, []string{"-config", s.cfgPath}, nil, in.logs, in.logs)
		}()
	}
	s.mu.Lock()
	s.running = in
	s.mu.Unlock()
	if s.standby {
		// A fresh process counts from 0.
		testenv.Eventually(s.t, waitShort, func() bool {
			return s.metricIfUp(`jinglepush_component_connections_total{result="standby"}`) >= 1
		}, "jinglepush turned away as a standby")
		return
	}
	s.waitReady()
}

// launch starts the built binary with the config at path.
func (s *stack) launch(path string) *instance {
	s.t.Helper()
	in := &instance{done: make(chan int, 1), logs: &syncBuffer{}}
	in.cmd = exec.Command(binary(s.t), "-config", path)
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		_ = in.cmd.Wait()
		in.done <- in.cmd.ProcessState.ExitCode()
	}()
	return in
}

// waitReady waits until /readyz says jinglepush is connected and Redis
// answers.
func (s *stack) waitReady() {
	s.t.Helper()
	testenv.Eventually(s.t, waitShort, func() bool {
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "jinglepush ready")
}

// stop ends jinglepush the way SIGTERM does and checks it exits cleanly.
func (s *stack) stop() {
	s.mu.Lock()
	in := s.running
	s.running = nil
	if in != nil {
		s.last = in
	}
	s.mu.Unlock()
	if in == nil {
		return
	}
	if in.cmd != nil {
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
	} else {
		in.cancel()
	}
	select {
	case code := <-in.done:
		if code != 0 {
			s.t.Errorf("jinglepush exited with %d", code)
		}
	case <-time.After(30 * time.Second):
		s.t.Error("jinglepush did not stop")
	}
	if s.t.Failed() || testenv.Verbose() {
		s.t.Logf("jinglepush log:\n%s", in.logs.String())
	}
}

// restart is a stop and a start: a component restart mid-call.
func (s *stack) restart() {
	s.stop()
	s.start()
}

// kill ends the child process with SIGKILL: no shutdown, nothing flushed.
func (s *stack) kill() {
	s.mu.Lock()
	in := s.running
	s.running = nil
	s.mu.Unlock()
	if in == nil || in.cmd == nil {
		s.t.Fatal("kill needs a child process (stackOptions.process)")
	}
	_ = in.cmd.Process.Kill()
	<-in.done
	if testenv.Verbose() {
		s.t.Logf("jinglepush log (killed):\n%s", in.logs.String())
	}
}

var built struct {
	once sync.Once
	path string
	err  error
}

// binary builds cmd/jinglepush once per test run (removed by TestMain).
func binary(t *testing.T) string {
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "jinglepush-e2e-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "jinglepush")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	sharedCluster.Close()
	sharedSentinel.Close()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// metric returns the value of the metric line that starts with prefix, e.g.
// `jinglepush_component_dropped_total{reason="malformed"}`; 0 when absent.
func (s *stack) metric(prefix string) float64 {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

// metricsText returns the /metrics page of s.
func (s *stack) metricsText() string {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// metricIfUp is metric, or -1 while the HTTP endpoint does not answer
// (a process starting).
func (s *stack) metricIfUp(prefix string) float64 {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return s.metric(prefix)
}

// waitMetric waits until the metric reaches want.
func (s *stack) waitMetric(prefix string, want float64) {
	s.t.Helper()
	testenv.Eventually(s.t, waitShort, func() bool { return s.metric(prefix) >= want }, "%s >= %v", prefix, want)
}

// user creates a new account for this scenario and returns its bare JID.
func (s *stack) user(name string) string {
	s.t.Helper()
	local := fmt.Sprintf("%s%d", name, s.srv.users.Add(1))
	s.srv.xmpp.Register(s.t, local, s.info.Password)
	return s.info.JID(local)
}

// login connects a client for bare JID as resource.
func (s *stack) login(bare, resource string, sm bool) *xmppclient.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	cfg := xmppclient.Config{Addr: s.info.C2SAddr, JID: bare, Password: s.info.Password, Resource: resource, SM: sm, Presence: true}
	if testenv.Verbose() {
		cfg.Trace = testenv.LogWriter(s.t, bare+": ")
	}
	c, err := xmppclient.Dial(ctx, cfg)
	if err != nil {
		s.t.Fatalf("login %s: %v", bare, err)
	}
	s.t.Cleanup(func() { _ = c.Drop() })
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c
}

// device is what an iOS app holds after registering.
type device struct {
	id, voip, token, node, secret string
}

// registerDevice does what the app does after every connect: register with
// jinglepush, enable XEP-0357 on its server with the node and secret, and
// send directed presence to the component.
func (s *stack) registerDevice(c *xmppclient.Client, d device) device {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	fields := map[string]string{"device-id": d.id}
	if d.voip != "" {
		fields["voip-token"] = d.voip
	}
	if d.token != "" {
		fields["token"] = d.token
	}
	res, err := c.Command(ctx, s.info.ComponentDomain, "register-push-apns", "execute", "", fields)
	if err != nil {
		s.t.Fatalf("register %s: %v", d.id, err)
	}
	if res.Status != "completed" || res.Value("jid") != s.info.ComponentDomain {
		s.t.Fatalf("register %s: %s", d.id, res.Raw)
	}
	d.node, d.secret = res.Value("node"), res.Value("secret")
	if err := c.EnablePush(ctx, s.info.ComponentDomain, d.node, map[string]string{"secret": d.secret}); err != nil {
		s.t.Fatal(err)
	}
	if err := c.SendPresence(s.info.ComponentDomain); err != nil {
		s.t.Fatal(err)
	}
	return d
}

// hibernatedCallee sets the usual scene: bob's iPhone registered with both
// tokens and its session hibernated (a suspended app), and alice online on
// her computer, ready to call. It returns their bare JIDs, alice's client
// and bob's device.
func (s *stack) hibernatedCallee() (bob, alice string, ac *xmppclient.Client, d device) {
	s.t.Helper()
	bob, alice = s.user("bob"), s.user("alice")
	bc := s.login(bob, "phone", true)
	d = s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
	s.hibernate(bc)
	return bob, alice, s.login(alice, "pc", false), d
}

// hibernate drops c's connection without ending its stream, as a suspended
// iPhone does, and waits until the server keeps the session hibernated.
func (s *stack) hibernate(c *xmppclient.Client) {
	s.t.Helper()
	off := s.srv.xmpp.LogOffset()
	if err := c.Drop(); err != nil {
		s.t.Fatal(err)
	}
	s.srv.xmpp.WaitForLog(s.t, off, s.srv.hibernated, waitShort)
}

// token returns a fresh 64-digit hex token.
func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// propose is the XEP-0353 propose a caller sends.
func propose(to, id string, media ...string) string {
	if len(media) == 0 {
		media = []string{"audio"}
	}
	var desc string
	for _, m := range media {
		desc += fmt.Sprintf("<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='%s'/>", m)
	}
	return fmt.Sprintf("<message to='%s' type='chat' id='m-%s'><propose xmlns='urn:xmpp:jingle-message:0' id='%s'>%s</propose><store xmlns='urn:xmpp:hints'/></message>", to, id, id, desc)
}

// jmi is any other XEP-0353 message (retract, proceed, accept, reject, finish).
func jmi(action, to, id string) string {
	return fmt.Sprintf("<message to='%s' type='chat' id='m-%s-%s'><%s xmlns='urn:xmpp:jingle-message:0' id='%s'/><store xmlns='urn:xmpp:hints'/></message>", to, action, id, action, id)
}

func send(t *testing.T, c *xmppclient.Client, raw string) {
	t.Helper()
	if err := c.Send(raw); err != nil {
		t.Fatal(err)
	}
}

// pushBody is the body of every jinglepush push.
type pushBody struct {
	APS     map[string]any `json:"aps"`
	Account string         `json:"account"`
	Event   string         `json:"event"`
	Call    struct {
		ID        string   `json:"id"`
		UUID      string   `json:"uuid"`
		From      string   `json:"from"`
		Caller    string   `json:"caller"`
		Media     []string `json:"media"`
		SentAt    int64    `json:"sent_at"`
		ExpiresAt int64    `json:"expires_at"`
	} `json:"call"`
}

func body(t *testing.T, r testenv.Request) pushBody {
	t.Helper()
	var b pushBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("push body %s: %v", r.Body, err)
	}
	return b
}

// settle waits until jinglepush has done all it will do with what the
// users sent so far. First a barrier: each connected client pings the
// component through its server and waits for the answer, so every copy
// the server made of that client's earlier stanzas has reached
// jinglepush's stream (servers keep a session's stanzas in order).
// Then jinglepush must be idle: no stanza queued or being handled, then
// (read after it, so a push queued by the last stanza is seen) no push
// queued, in flight or waiting for a retry. Timers (ring timeouts, held
// messages) are not waited for.
func (s *stack) settle() {
	s.t.Helper()
	s.mu.Lock()
	clients := append([]*xmppclient.Client(nil), s.clients...)
	s.mu.Unlock()
	for _, c := range clients {
		select {
		case <-c.Done():
			continue // dropped or closed: it sends nothing more
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		_, err := c.IQ(ctx, "<iq type='get' to='"+s.info.ComponentDomain+"'><ping xmlns='urn:xmpp:ping'/></iq>")
		cancel()
		if err != nil && c.Err() == nil {
			s.t.Fatalf("barrier ping from %s: %v", c.JID(), err)
		}
	}
	testenv.Eventually(s.t, waitShort, func() bool {
		for _, p := range s.processes() {
			if p.metric("jinglepush_component_unfinished_stanzas") != 0 || p.metric("jinglepush_apns_unfinished_pushes") != 0 {
				return false
			}
		}
		return true
	}, "jinglepush to be idle")
}

// processes returns s and its peers that run now.
func (s *stack) processes() []*stack {
	s.mu.Lock()
	all := append([]*stack{s}, s.peers...)
	s.mu.Unlock()
	var up []*stack
	for _, p := range all {
		p.mu.Lock()
		running := p.running != nil
		p.mu.Unlock()
		if running {
			up = append(up, p)
		}
	}
	return up
}

// pushes waits for n pushes, then until jinglepush is idle (settle), and
// returns all pushes so far: "exactly n" means no other push followed.
func (s *stack) pushes(n int) []testenv.Request {
	s.t.Helper()
	s.apns.Wait(s.t, n, waitShort)
	s.settle()
	got := s.apns.Requests()
	if len(got) != n {
		for _, r := range got {
			s.t.Logf("push: %s %s %s", r.Header.Get("apns-push-type"), r.Token, r.Body)
		}
		s.t.Fatalf("%d pushes, want %d", len(got), n)
	}
	return got
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
