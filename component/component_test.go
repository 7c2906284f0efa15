package component

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/sessions"
)

const secret = "s3cr3t"

// fakeServer plays the server side of XEP-0114 on a loopback port.
type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	secret string
	// first is written right after <handshake/>, in the same write: servers
	// do that (Prosody's privilege message).
	first string
	conns chan *serverConn
}

type serverConn struct {
	net.Conn
	in    chan string   // top-level elements from the component
	stall chan struct{} // while open (not nil), the server reads nothing
	mu    sync.Mutex
}

// stop makes the server stop reading, as a server that cannot keep up.
func (c *serverConn) stop() {
	c.mu.Lock()
	c.stall = make(chan struct{})
	c.mu.Unlock()
}

// resume lets it read again.
func (c *serverConn) resume() {
	c.mu.Lock()
	if c.stall != nil {
		close(c.stall)
		c.stall = nil
	}
	c.mu.Unlock()
}

func (c *serverConn) waitStall() {
	c.mu.Lock()
	ch := c.stall
	c.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func newFakeServer(t *testing.T, first string) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, secret: secret, first: first, conns: make(chan *serverConn, 4)}
	t.Cleanup(func() { ln.Close() })
	go s.accept()
	return s
}

func (s *fakeServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handshake(c)
	}
}

func (s *fakeServer) handshake(c net.Conn) {
	r := bufio.NewReader(c)
	// The component's stream header ends at the first '>'.
	if _, err := r.ReadString('>'); err != nil {
		c.Close()
		return
	}
	fmt.Fprint(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' id='42' xmlns='jabber:component:accept' from='push.example.com'>`)
	hs, err := r.ReadString('>') // <handshake>
	if err != nil || !strings.HasPrefix(hs, "<handshake") {
		c.Close()
		return
	}
	digest, err := r.ReadString('<')
	if err != nil {
		c.Close()
		return
	}
	_, _ = r.ReadString('>') // </handshake>
	sum := sha1.Sum([]byte("42" + s.secret))
	if strings.TrimSuffix(digest, "<") != hex.EncodeToString(sum[:]) {
		fmt.Fprint(c, `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
		c.Close()
		return
	}
	fmt.Fprint(c, "<handshake/>"+s.first)
	sc := &serverConn{Conn: c, in: make(chan string, 64)}
	go func() {
		defer close(sc.in)
		f := newFramer(r, 1<<20)
		for {
			sc.waitStall()
			el, err := f.next()
			if err != nil {
				return
			}
			if el == nil {
				continue
			}
			// encoding/xml writes double quotes: compare with single ones.
			sc.in <- strings.ReplaceAll(string(el), `"`, "'")
		}
	}()
	s.conns <- sc
}

func (s *fakeServer) conn(t *testing.T) *serverConn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the component did not connect")
	}
	return nil
}

func (c *serverConn) send(t *testing.T, xml string) {
	t.Helper()
	if _, err := io.WriteString(c, xml); err != nil {
		t.Fatal(err)
	}
}

// next returns the next element the component wrote that contains want.
func (c *serverConn) next(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case el, ok := <-c.in:
			if !ok {
				t.Fatalf("stream closed while waiting for %q", want)
			}
			if strings.Contains(el, want) {
				return el
			}
		case <-timeout:
			t.Fatalf("nothing with %q from the component", want)
		}
	}
}

// backend records what the component hands it.
type backend struct {
	mu        sync.Mutex
	calls     []jingle.CallEvent
	presences []jingle.Presence
	regs      []sessions.Registration
	publishes []jingle.Publish
	err       error
	block     chan struct{} // nil, or closed to let blocked calls go on
	unblock   sync.Once
	seen      chan struct{}
}

func (b *backend) release() {
	if b.block != nil {
		b.unblock.Do(func() { close(b.block) })
	}
}

func newBackend() *backend { return &backend{seen: make(chan struct{}, 100)} }

func (b *backend) record(f func()) error {
	if b.block != nil {
		<-b.block
	}
	b.mu.Lock()
	f()
	err := b.err
	b.mu.Unlock()
	b.seen <- struct{}{}
	return err
}

func (b *backend) Call(_ context.Context, ev jingle.CallEvent) error {
	return b.record(func() { b.calls = append(b.calls, ev) })
}
func (b *backend) Presence(_ context.Context, p jingle.Presence) error {
	return b.record(func() { b.presences = append(b.presences, p) })
}
func (b *backend) Publish(_ context.Context, _ jid.JID, p jingle.Publish) error {
	return b.record(func() { b.publishes = append(b.publishes, p) })
}
func (b *backend) Register(_ context.Context, r sessions.Registration) (sessions.Device, error) {
	err := b.record(func() { b.regs = append(b.regs, r) })
	return sessions.Device{ID: r.DeviceID, Node: "node1", Secret: "secret1"}, err
}
func (b *backend) Unregister(_ context.Context, account, deviceID string) error {
	return b.record(func() { b.regs = append(b.regs, sessions.Registration{Account: account, DeviceID: deviceID}) })
}

func (b *backend) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-b.seen:
		case <-time.After(10 * time.Second):
			t.Fatal("the backend was not called")
		}
	}
}

type harness struct {
	comp   *Component
	srv    *fakeServer
	be     *backend
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, first string, mod func(*Config)) *harness {
	t.Helper()
	return startWith(t, first, mod, newBackend())
}

func startWith(t *testing.T, first string, mod func(*Config), be *backend) *harness {
	t.Helper()
	srv := newFakeServer(t, first)
	cfg := Config{
		Server: srv.ln.Addr().String(), Domain: "push.example.com", Secret: secret,
		ServedDomains: []string{"example.com"},
		ReconnectMin:  10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	comp, err := New(cfg, be, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{comp: comp, srv: srv, be: be, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- comp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		be.release()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return h
}

func (h *harness) dropped(reason string) float64 {
	return testutil.ToFloat64(h.comp.m.dropped.WithLabelValues(reason))
}

const propose = `<message to='push.example.com' from='example.com'><forwarded xmlns='urn:xmpp:forward:0'><message type='chat' to='bob@example.com' xmlns='jabber:client' from='alice@example.com/pc' id='m1'><propose xmlns='urn:xmpp:jingle-message:0' id='call1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message></forwarded></message>`

func TestStanzasAfterHandshake(t *testing.T) {
	// Prosody writes <handshake/> and its first stanzas in one segment.
	h := start(t, `<message to='push.example.com' from='example.com'><privilege xmlns='urn:xmpp:privilege:2'><perm type='managed_entity' access='presence'/></privilege></message><presence to='push.example.com' from='bob@example.com/phone'><delay xmlns='urn:xmpp:delay' stamp='2026-11-22T04:20:37Z'/></presence>`+propose, nil)
	h.srv.conn(t)
	h.be.wait(t, 2)
	h.be.mu.Lock()
	defer h.be.mu.Unlock()
	if len(h.be.presences) != 1 || h.be.presences[0].From.String() != "bob@example.com/phone" {
		t.Errorf("presences %+v", h.be.presences)
	}
	if len(h.be.calls) != 1 || h.be.calls[0].ID != "call1" || h.be.calls[0].Action != jingle.ActionPropose {
		t.Errorf("calls %+v", h.be.calls)
	}
	if !h.comp.Connected() {
		t.Error("not connected")
	}
}

func TestIQAnswers(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	tests := [...]struct{ send, want, not string }{
		0: {`<iq type='get' id='d1' to='push.example.com' from='bob@example.com/phone'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			`id='d1'`, ""},
		1: {`<iq type='get' id='p1' to='push.example.com' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`, `id='p1'`, "error"},
		2: {`<iq type='get' id='v1' to='push.example.com' from='bob@example.com/phone'><query xmlns='jabber:iq:version'/></iq>`, `id='v1'`, "error"},
		3: {`<iq type='set' id='u1' to='push.example.com' from='bob@example.com/phone'><query xmlns='urn:example:unknown'/></iq>`, `service-unavailable`, ""},
		4: {`<iq type='get' id='i1' to='push.example.com' from='bob@example.com/phone'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`, `register-push-apns`, "error"},
		5: {`<iq type='get' id='b1' to='push.example.com' from='bob@example.com/phone'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>`, `bad-request`, ""},
		6: {`<iq type='get' id='n1' to='push.example.com' from='bob@example.com/phone'><query xmlns='http://jabber.org/protocol/disco#info' node='register-push-apns'/></iq>`, `command-node`, "error"},
	}
	for i, tc := range tests {
		c.send(t, tc.send)
		got := c.next(t, tc.want)
		iq, err := jingle.ParseIQ([]byte(got))
		if err != nil && !strings.Contains(got, "error") {
			t.Errorf("%d: reply %s: %v", i, got, err)
		}
		if iq.From.String() != "push.example.com" {
			t.Errorf("%d: reply from %q: %s", i, iq.From, got)
		}
		if tc.not != "" && strings.Contains(got, tc.not) {
			t.Errorf("%d: reply %s", i, got)
		}
	}
	// The disco#info answer of the contract.
	c.send(t, tests[0].send)
	got := c.next(t, "id='d1'")
	for _, want := range []string{`category="pubsub"`, `type="push"`, "urn:xmpp:push:0", "http://jabber.org/protocol/commands", "urn:xmpp:ping", "jabber:iq:version", `to="bob@example.com/phone"`} {
		if !strings.Contains(got, strings.ReplaceAll(want, `"`, "'")) {
			t.Errorf("disco#info %s lacks %s", got, want)
		}
	}
}

func TestDrops(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	// A copy from something that is not a served server, a broken propose,
	// a huge stanza, then a good one: the stream stays up.
	c.send(t, strings.Replace(propose, "from='example.com'", "from='mallory@example.com'", 1))
	c.send(t, strings.Replace(propose, " id='call1'", "", 1))
	c.send(t, `<message from='example.com'><body>`+strings.Repeat("x", 70000)+`</body></message>`)
	c.send(t, `<presence from='eve@evil.example/x' to='push.example.com'/>`)
	c.send(t, `<message from='example.com' to='push.example.com'><body>chatter</body></message>`)
	c.send(t, propose)
	h.be.wait(t, 1)
	for reason, want := range map[string]float64{"untrusted_forwarder": 1, "malformed": 1, "oversize": 1, "foreign_domain": 1} {
		if got := h.dropped(reason); got != want {
			t.Errorf("dropped{%s} = %v, want %v", reason, got, want)
		}
	}
	if n := testutil.ToFloat64(h.comp.m.stanzas.ignored); n != 1 {
		t.Errorf("ignored %v", n)
	}
	if !h.comp.Connected() {
		t.Error("stream went down")
	}
}

func TestCommands(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)

	c.send(t, `<iq type='set' id='c1' to='push.example.com' from='bob@example.com/phone'><command xmlns='http://jabber.org/protocol/commands' node='register-push-apns' action='execute'/></iq>`)
	got := c.next(t, "id='c1'")
	if !strings.Contains(got, `status='executing'`) || !strings.Contains(got, `var='voip-token'`) || !strings.Contains(got, "sessionid") {
		t.Errorf("bare execute: %s", got)
	}

	form := `<x xmlns='jabber:x:data' type='submit'><field var='android-id'><value>dev1</value></field><field var='voip-token'><value>ab</value></field></x>`
	c.send(t, `<iq type='set' id='c2' to='push.example.com' from='bob@example.com/phone'><command xmlns='http://jabber.org/protocol/commands' node='register-push-apns' action='complete' sessionid='s'>`+form+`</command></iq>`)
	got = c.next(t, "id='c2'")
	for _, want := range []string{`status='completed'`, "node1", "secret1", "push.example.com"} {
		if !strings.Contains(got, want) {
			t.Errorf("register: %s lacks %s", got, want)
		}
	}
	h.be.mu.Lock()
	r := h.be.regs[0]
	h.be.mu.Unlock()
	if r.Account != "bob@example.com" || r.Resource != "phone" || r.DeviceID != "dev1" || r.VoIPToken != "ab" {
		t.Errorf("registration %+v", r)
	}

	// Errors from the backend become the contract's stanza errors.
	h.be.mu.Lock()
	h.be.err = &sessions.InputError{Kind: sessions.ErrInvalid, Field: "voip-token", Text: "voip-token must be 64 to 200 hex digits"}
	h.be.mu.Unlock()
	c.send(t, `<iq type='set' id='c3' to='push.example.com' from='bob@example.com/phone'><command xmlns='http://jabber.org/protocol/commands' node='register-push-apns' action='execute'>`+form+`</command></iq>`)
	got = c.next(t, "id='c3'")
	if !strings.Contains(got, `type='modify'`) || !strings.Contains(got, "bad-request") || !strings.Contains(got, "voip-token must be") {
		t.Errorf("invalid token: %s", got)
	}
	h.be.mu.Lock()
	h.be.err = errors.New("redis: connection refused")
	h.be.mu.Unlock()
	c.send(t, `<iq type='set' id='c4' to='push.example.com' from='bob@example.com/phone'><command xmlns='http://jabber.org/protocol/commands' node='unregister-push-apns' action='execute'>`+form+`</command></iq>`)
	if got = c.next(t, "id='c4'"); !strings.Contains(got, `type='wait'`) {
		t.Errorf("redis trouble: %s", got)
	}

	c.send(t, `<iq type='set' id='c5' to='push.example.com' from='eve@evil.example/x'><command xmlns='http://jabber.org/protocol/commands' node='register-push-apns' action='execute'>`+form+`</command></iq>`)
	if got = c.next(t, "id='c5'"); !strings.Contains(got, "forbidden") {
		t.Errorf("foreign user: %s", got)
	}
	c.send(t, `<iq type='set' id='c6' to='push.example.com' from='bob@example.com/phone'><command xmlns='http://jabber.org/protocol/commands' node='nope' action='execute'/></iq>`)
	if got = c.next(t, "id='c6'"); !strings.Contains(got, "item-not-found") {
		t.Errorf("unknown command: %s", got)
	}
}

func TestPublishAnswers(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	pub := `<iq from='example.com' type='set' to='push.example.com' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='bobnode'><item><notification xmlns='urn:xmpp:push:0'/></item></publish><publish-options><x type='submit' xmlns='jabber:x:data'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s</value></field></x></publish-options></pubsub></iq>`
	c.send(t, fmt.Sprintf(pub, "p1"))
	if got := c.next(t, "id='p1'"); !strings.Contains(got, `type='result'`) {
		t.Errorf("publish: %s", got)
	}
	h.be.mu.Lock()
	h.be.err = &sessions.InputError{Kind: sessions.ErrUnknownNode, Field: "node", Text: "no such node"}
	h.be.mu.Unlock()
	c.send(t, fmt.Sprintf(pub, "p2"))
	if got := c.next(t, "id='p2'"); !strings.Contains(got, "item-not-found") || !strings.Contains(got, `type='cancel'`) {
		t.Errorf("unknown node: %s", got)
	}
	// Only a served server may publish.
	c.send(t, strings.Replace(fmt.Sprintf(pub, "p3"), "from='example.com'", "from='evil.example'", 1))
	if got := c.next(t, "id='p3'"); !strings.Contains(got, "forbidden") {
		t.Errorf("foreign publisher: %s", got)
	}
}

func TestQueueFull(t *testing.T) {
	be := newBackend()
	be.block = make(chan struct{})
	h := startWith(t, "", func(c *Config) { c.Workers, c.QueueSize = 1, 1 }, be)
	c := h.srv.conn(t)
	pub := `<iq from='example.com' type='set' to='push.example.com' id='q%d'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item><notification xmlns='urn:xmpp:push:0'/></item></publish></pubsub></iq>`
	for i := range 5 {
		c.send(t, fmt.Sprintf(pub, i))
	}
	// One is being handled, one waits in the queue: the rest are answered
	// at once with a wait error, which servers retry and ejabberd tolerates.
	got := c.next(t, "resource-constraint")
	if !strings.Contains(got, `type='wait'`) {
		t.Errorf("queue full: %s", got)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return h.dropped("queue_full") == 3 }, "3 stanzas dropped")
	h.be.release()
}

func TestReconnect(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	c.Close() // the server goes away
	c = h.srv.conn(t)
	c.send(t, propose)
	h.be.wait(t, 1)
	c.send(t, `</stream:stream>`)
	h.srv.conn(t)
}

func TestWrongSecret(t *testing.T) {
	h := start(t, "", func(c *Config) { c.Secret = "wrong" })
	testenv.Eventually(t, 10*time.Second, func() bool {
		return testutil.ToFloat64(h.comp.m.connects.WithLabelValues("refused")) >= 2
	}, "2 refused handshakes")
	if h.comp.Connected() {
		t.Error("connected with a wrong secret")
	}
}

func TestShutdownClosesStream(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	h.cancel()
	// The component ends its stream: the server's framer sees
	// </stream:stream> and stops.
	select {
	case _, ok := <-c.in:
		if ok {
			t.Error("an element instead of the stream end")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the component did not close its stream")
	}
}

// A server that stops reading (its socket full) never stalls the read
// loop: answers the read loop would queue are dropped and counted, and the
// stanzas that follow still reach the workers. Once the server reads
// again, the stream carries on.
func TestReadLoopNeverWaits(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	c.stop()
	stalled := time.Now()
	// Pings, two hundred at a time, until the component's socket and then
	// its outbox are full and answers are dropped (well within the 10 s a
	// write may take before the component calls the connection dead).
	for n := 0; h.dropped("reply_dropped") == 0; n++ {
		if n == 5000 {
			t.Fatal("no answer dropped after a million pings")
		}
		var ping strings.Builder
		for i := range 200 {
			fmt.Fprintf(&ping, "<iq type='get' id='p%d-%d' from='localhost' to='push.example.com'><ping xmlns='urn:xmpp:ping'/></iq>", n, i)
		}
		c.send(t, ping.String())
	}
	t.Logf("answers dropped after %v", time.Since(stalled))
	c.send(t, propose)
	h.be.wait(t, 1) // the read loop went on
	t.Logf("the propose handled after %v", time.Since(stalled))
	c.resume()
	// The outbox drains; a ping sent once it has room is answered.
	answered := make(chan struct{})
	go func() {
		for el := range c.in {
			if strings.Contains(el, "id='after") {
				close(answered)
				break
			}
		}
	}()
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		c.send(t, fmt.Sprintf("<iq type='get' id='after%d' from='localhost' to='push.example.com'><ping xmlns='urn:xmpp:ping'/></iq>", i))
		select {
		case <-answered:
			if v := testutil.ToFloat64(h.comp.m.connects.WithLabelValues("connected")); v != 1 {
				t.Errorf("%v connections: the stream went down", v)
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no answer once the server reads again (connections %v, dropped %v)", testutil.ToFloat64(h.comp.m.connects.WithLabelValues("connected")), h.dropped("reply_dropped"))
		}
	}
}

// An IQ over xmpp.max_stanza_size is skipped unread, but answered with an
// error, so that the server (or the user) learns at once.
func TestOversizeIQAnswered(t *testing.T) {
	h := start(t, "", func(c *Config) { c.MaxStanzaSize = 1024 })
	c := h.srv.conn(t)
	big := strings.Repeat("x", 4096)
	c.send(t, "<iq type='set' id='big1' from='bob@example.com/phone' to='push.example.com'><command xmlns='http://jabber.org/protocol/commands' node='register-push-apns'><note>"+big+"</note></command></iq>")
	got := c.next(t, "id='big1'")
	if !strings.Contains(got, "type='error'") || !strings.Contains(got, "not-acceptable") {
		t.Errorf("answer to an oversized IQ: %s", got)
	}
	if h.dropped("oversize") != 1 {
		t.Errorf("oversize drops: %v", h.dropped("oversize"))
	}
	c.send(t, propose) // the stream goes on
	h.be.wait(t, 1)
}
