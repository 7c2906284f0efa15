package xmppclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is an in-process c2s server on loopback that plays a script. It
// writes in small chunks (TCP_NODELAY is Go's default, so each chunk is its
// own segment), so the client's reads end in the middle of tags, attributes
// and UTF-8 sequences.
type fakeServer struct {
	ln   net.Listener
	conn net.Conn
	er   *ElementReader

	mu  sync.Mutex
	all []net.Conn // for the cleanup, which runs on another goroutine
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln}
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.all {
			_ = c.Close()
		}
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) accept() error {
	conn, err := s.ln.Accept()
	if err != nil {
		return err
	}
	s.conn, s.er = conn, NewElementReader(conn)
	s.mu.Lock()
	s.all = append(s.all, conn)
	s.mu.Unlock()
	return nil
}

// send writes raw in chunks of n bytes.
func (s *fakeServer) send(raw string, n int) error {
	for len(raw) > 0 {
		k := min(n, len(raw))
		if _, err := s.conn.Write([]byte(raw[:k])); err != nil {
			return err
		}
		raw = raw[k:]
	}
	return nil
}

// expect reads the client's next element and checks its local name.
func (s *fakeServer) expect(local string) (Stanza, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	st, err := s.er.Next()
	if err != nil {
		return st, fmt.Errorf("server waiting for <%s/>: %w", local, err)
	}
	if st.Name.Local != local {
		return st, fmt.Errorf("server expected <%s/>, got %s", local, st.Raw)
	}
	return st, nil
}

func (s *fakeServer) header(id string) string {
	return "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " +
		"id='" + id + "' from='localhost' version='1.0' xml:lang='en'>"
}

// login plays the server side of a login with SM, as Prosody does it.
func (s *fakeServer) login(password string) error {
	if err := s.accept(); err != nil {
		return err
	}
	h, err := s.er.ReadHeader()
	if err != nil {
		return err
	}
	if h.To != "localhost" || h.XMLNS != nsClient || h.Version != "1.0" {
		return fmt.Errorf("client header %+v", h)
	}
	err = s.send(s.header("s1")+"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"+
		"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>", 5)
	if err != nil {
		return err
	}
	auth, err := s.expect("auth")
	if err != nil {
		return err
	}
	var a struct {
		Mechanism string `xml:"mechanism,attr"`
		Data      string `xml:",chardata"`
	}
	if err := auth.Unmarshal(&a); err != nil {
		return err
	}
	creds, _ := base64.StdEncoding.DecodeString(a.Data)
	if a.Mechanism != "PLAIN" || string(creds) != "\x00alice\x00"+password {
		return s.send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text xml:lang='en'>Unable to authorize you with the authentication credentials you've sent.</text></failure>", 7)
	}
	if err := s.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", 4); err != nil {
		return err
	}
	s.er.Reset()
	if _, err := s.er.ReadHeader(); err != nil {
		return err
	}
	err = s.send(s.header("s2")+"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>"+
		"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"+
		"<sm xmlns='urn:xmpp:sm:2'><optional/></sm><sm xmlns='urn:xmpp:sm:3'><optional/></sm></stream:features>", 9)
	if err != nil {
		return err
	}
	bind, err := s.expect("iq")
	if err != nil {
		return err
	}
	var b struct {
		Resource string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>resource"`
	}
	if err := bind.Unmarshal(&b); err != nil || b.Resource != "phone" {
		return fmt.Errorf("bind request %s: %v", bind.Raw, err)
	}
	err = s.send("<iq type='result' id='"+bind.ID()+"'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/phone</jid></bind></iq>", 3)
	if err != nil {
		return err
	}
	if _, err := s.expect("enable"); err != nil {
		return err
	}
	// A stanza can overtake <enabled/>; the client must keep it, not count it.
	if err := s.send("<message from='localhost' id='early'/><enabled xmlns='urn:xmpp:sm:3' id='smid-1' resume='true' max='600'/>", 6); err != nil {
		return err
	}
	_, err = s.expect("presence")
	return err
}

func testConfig(addr string) Config {
	return Config{Addr: addr, JID: "alice@localhost", Password: "pass", Resource: "phone", SM: true, Presence: true, Timeout: 5 * time.Second}
}

func TestClientAgainstFake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := newFakeServer(t)
	loginErr := make(chan error, 1)
	go func() { loginErr <- srv.login("pass") }()

	var trace strings.Builder
	cfg := testConfig(srv.addr())
	cfg.Trace = &trace
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Drop()
	if err := <-loginErr; err != nil {
		t.Fatal(err)
	}
	if c.JID() != "alice@localhost/phone" || c.Header().ID != "s2" {
		t.Errorf("JID %q, header %+v", c.JID(), c.Header())
	}
	if sm := c.SMState(); sm.ID != "smid-1" || sm.Handled != 0 {
		t.Errorf("SM state %+v", sm)
	}

	// A message split at every 2 bytes, a ping, then an ack request.
	msg := "<message from='bob@localhost/x' type='chat' id='m1'><body>grüße &amp; ✓</body></message>"
	if err := srv.send(msg+"<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq><r xmlns='urn:xmpp:sm:3'/>", 2); err != nil {
		t.Fatal(err)
	}
	pong, err := srv.expect("iq")
	if err != nil {
		t.Fatal(err)
	}
	if pong.Type() != "result" || pong.ID() != "p1" || pong.To() != "localhost" {
		t.Errorf("ping answer %s", pong.Raw)
	}
	ack, err := srv.expect("a")
	if err != nil {
		t.Fatal(err)
	}
	if ack.Attr("h") != "2" { // the message and the ping; not the early message
		t.Errorf("ack %s, want h='2'", ack.Raw)
	}
	// The same count, unasked.
	if err := c.Ack(); err != nil {
		t.Fatal(err)
	}
	if ack, err := srv.expect("a"); err != nil || ack.Attr("h") != "2" {
		t.Errorf("unasked ack %v, %v", ack, err)
	}

	got, err := c.WaitFor(ctx, func(st Stanza) bool { return st.ID() == "m1" })
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(msg, "<message", "<message xmlns='jabber:client'", 1); got.Raw != want {
		t.Errorf("message\n got %s\nwant %s", got.Raw, want)
	}
	// The early message stayed in the mailbox.
	if q := c.Queued(); len(q) != 1 || q[0].ID() != "early" {
		t.Errorf("mailbox %v", q)
	}
	if st, err := c.Next(ctx); err != nil || st.ID() != "early" {
		t.Errorf("Next = %v, %v", st, err)
	}

	// An IQ is matched by id; a stanza arriving before the reply is left in
	// the mailbox.
	type result struct {
		st  Stanza
		err error
	}
	iqDone := make(chan result, 1)
	go func() {
		st, err := c.IQ(ctx, "<iq type='get' to='localhost'><query xmlns='jabber:iq:version'/></iq>")
		iqDone <- result{st, err}
	}()
	req, err := srv.expect("iq")
	if err != nil {
		t.Fatal(err)
	}
	if req.ID() == "" || req.Type() != "get" {
		t.Fatalf("IQ request %s", req.Raw)
	}
	if err := srv.send("<presence from='bob@localhost/x'/><iq type='result' id='"+req.ID()+"' from='localhost'><query xmlns='jabber:iq:version'><name>fake</name></query></iq>", 8); err != nil {
		t.Fatal(err)
	}
	r := <-iqDone
	if r.err != nil || !strings.Contains(r.st.Raw, "<name>fake</name>") {
		t.Errorf("IQ = %v, %v", r.st, r.err)
	}
	if _, err := c.WaitFor(ctx, func(st Stanza) bool { return st.Name.Local == "presence" }); err != nil {
		t.Error(err)
	}

	// Ad-hoc command: a form comes back.
	cmdDone := make(chan *CommandResult, 1)
	go func() {
		res, err := c.Command(ctx, "push.localhost", "register-push-apns", "execute", "", map[string]string{"device-id": "d1", "voip-token": "ab"})
		if err != nil {
			t.Error(err)
		}
		cmdDone <- res
	}()
	req, err = srv.expect("iq")
	if err != nil {
		t.Fatal(err)
	}
	var cmdReq struct {
		Command struct {
			Node   string `xml:"node,attr"`
			Action string `xml:"action,attr"`
			Fields []struct {
				Var   string `xml:"var,attr"`
				Value string `xml:"value"`
			} `xml:"jabber:x:data x>field"`
		} `xml:"http://jabber.org/protocol/commands command"`
	}
	if err := req.Unmarshal(&cmdReq); err != nil {
		t.Fatal(err)
	}
	cmd := cmdReq.Command
	if cmd.Node != "register-push-apns" || cmd.Action != "execute" || len(cmd.Fields) != 2 ||
		cmd.Fields[0].Var != "device-id" || cmd.Fields[1].Value != "ab" {
		t.Errorf("command request %s", req.Raw)
	}
	err = srv.send("<iq type='result' from='push.localhost' id='"+req.ID()+"'>"+
		"<command xmlns='http://jabber.org/protocol/commands' node='register-push-apns' sessionid='s9' status='completed'>"+
		"<note type='info'>done</note><x xmlns='jabber:x:data' type='result'>"+
		"<field var='jid'><value>push.localhost</value></field><field var='node'><value>n1</value></field>"+
		"<field var='multi'><value>a</value><value>b</value></field></x></command></iq>", 11)
	if err != nil {
		t.Fatal(err)
	}
	res := <-cmdDone
	if res == nil || res.Status != "completed" || res.SessionID != "s9" || res.FormType != "result" ||
		res.Value("node") != "n1" || len(res.Fields["multi"]) != 2 || len(res.Notes) != 1 || res.Notes[0] != "done" {
		t.Errorf("command result %+v", res)
	}

	// An error reply to a command.
	errDone := make(chan error, 1)
	go func() {
		res, err := c.Command(ctx, "push.localhost", "nope", "", "", nil)
		if res == nil || res.Error == nil || res.Raw == "" {
			t.Errorf("error result %+v", res)
		}
		errDone <- err
	}()
	req, err = srv.expect("iq")
	if err != nil {
		t.Fatal(err)
	}
	err = srv.send("<iq type='error' from='push.localhost' id='"+req.ID()+"'><error type='cancel'>"+
		"<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such command</text></error></iq>", 13)
	if err != nil {
		t.Fatal(err)
	}
	var se *StanzaError
	if err := <-errDone; !errors.As(err, &se) || se.Condition != "item-not-found" || se.Type != "cancel" || se.Text != "no such command" {
		t.Errorf("command error = %v", err)
	}

	// The server ends the stream with an error.
	if err := srv.send("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></stream:error></stream:stream>", 10); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("client did not notice the stream error")
	}
	var streamErr *StreamError
	if err := c.Err(); !errors.As(err, &streamErr) || streamErr.Condition != "conflict" || streamErr.Text != "Replaced by new connection" {
		t.Errorf("Err = %v", c.Err())
	}
	if _, err := srv.expect("stream"); err == nil || !errors.Is(err, ErrStreamClosed) {
		t.Errorf("client did not close its stream: %v", err)
	}
	if err := c.Send("<presence/>"); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after the end = %v", err)
	}
	if !strings.Contains(trace.String(), "alice@localhost/phone <<< <message xmlns='jabber:client' from='bob@localhost/x'") {
		t.Errorf("trace lacks the message:\n%s", trace.String())
	}
}

func TestClientAuthFailure(t *testing.T) {
	srv := newFakeServer(t)
	go func() { _ = srv.login("other") }()
	_, err := Dial(context.Background(), testConfig(srv.addr()))
	var se *SASLError
	if !errors.As(err, &se) || se.Condition != "not-authorized" {
		t.Fatalf("err = %v, want a not-authorized SASLError", err)
	}
}

func TestClientClose(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer(t)
	loginErr := make(chan error, 1)
	go func() { loginErr <- srv.login("pass") }()
	c, err := Dial(ctx, testConfig(srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-loginErr; err != nil {
		t.Fatal(err)
	}
	in := c.Incoming()
	if err := srv.send("<message id='a'/><message id='b'/>", 3); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"early", "a", "b"} {
		if st := <-in; st.ID() != id {
			t.Errorf("Incoming gave %s, want id %s", st.Raw, id)
		}
	}

	closed := make(chan error, 1)
	go func() { closed <- c.CloseUnavailable() }()
	if st, err := srv.expect("presence"); err != nil || st.Type() != "unavailable" {
		t.Fatalf("got %v, %v", st, err)
	}
	if _, err := srv.expect("x"); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("server read %v, want the end of the stream", err)
	}
	if err := srv.send("</stream:stream>", 100); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v", c.Err())
	}
	if _, ok := <-in; ok {
		t.Error("Incoming still open")
	}
	if _, err := c.IQ(ctx, "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>"); !errors.Is(err, ErrClosed) {
		t.Errorf("IQ after Close = %v", err)
	}
}

func TestClientLoginTimeout(t *testing.T) {
	srv := newFakeServer(t)
	go func() { _ = srv.accept() }() // and then say nothing
	cfg := testConfig(srv.addr())
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := Dial(context.Background(), cfg)
	if err == nil {
		t.Fatal("Dial succeeded against a silent server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial took %v", d)
	}
}

func TestSendRejectsMalformed(t *testing.T) {
	c := &Client{}
	if err := c.Send("<message><body>x</message>"); err == nil {
		t.Error("malformed stanza accepted")
	}
}
