package xmppclient

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is used when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// ErrClosed is returned for operations on a client that was closed with
// Close, CloseUnavailable or Drop, and is what Err reports afterwards.
var ErrClosed = errors.New("xmppclient: client closed")

// Config says where and as whom to log in.
type Config struct {
	// Addr is the server's c2s listener, host:port.
	Addr string
	// JID is the account, local@domain. A resource part, if present, is used
	// when Resource is empty.
	JID      string
	Password string
	// Resource is requested at bind; empty lets the server choose.
	Resource string
	// SM enables XEP-0198 stream management with resumption. The client then
	// counts inbound stanzas and answers the server's ack requests, and Drop
	// leaves a hibernated session behind that Resume can take back.
	SM bool
	// Presence sends initial presence once logged in.
	Presence bool
	// Timeout bounds the login (connect, authenticate, bind, enable), every
	// write, and the wait for the server's </stream:stream> in Close.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// Trace, if set, receives every element sent and received, one per line,
	// prefixed with the JID and ">>>" (sent) or "<<<" (received).
	Trace io.Writer
}

// SMState describes the XEP-0198 session of a client.
type SMState struct {
	// ID is the resumption id the server gave; empty when SM is off.
	ID string
	// Handled is the number of stanzas received since SM was enabled (the h
	// the client reports in <a/>), carried over on Resume.
	Handled uint32
}

// Client is a logged-in c2s connection. Its methods are safe for concurrent
// use.
type Client struct {
	cfg    Config
	conn   net.Conn
	er     *ElementReader
	header Header
	local  string
	domain string
	jid    string // full JID once bound

	wmu       sync.Mutex
	live      bool // the login is over: writes get their own deadline
	sentClose bool // </stream:stream> was written

	smID    string // fixed before the reader starts
	handled atomic.Uint32

	pmu     sync.Mutex
	pending map[string]chan Stanza // IQ id -> waiter

	box     *mailbox
	closing atomic.Bool   // Close or Drop was called
	quit    chan struct{} // closed by Close and Drop; stops the Incoming pump
	quitMu  sync.Once
	done    chan struct{} // closed when the reader has stopped
	err     error         // why it stopped; read after done

	inOnce sync.Once
	in     chan Stanza

	tmu sync.Mutex // serialises Trace
}

type resumeState struct {
	id      string
	handled uint32
	jid     string
}

// Dial connects, authenticates with SASL PLAIN, binds a resource, establishes
// a session if the server requires it, enables XEP-0198 if cfg.SM, and sends
// initial presence if cfg.Presence.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	return connect(ctx, cfg, nil)
}

// Resume opens a new connection and resumes prev's XEP-0198 session (prev
// must have been dialled with SM and have lost its connection, e.g. by Drop).
// The server then re-sends the stanzas prev did not acknowledge, which arrive
// in the new client's mailbox. The client does not keep its own outbound
// queue, so stanzas prev sent but the server never received are lost.
func Resume(ctx context.Context, cfg Config, prev *Client) (*Client, error) {
	if prev.smID == "" {
		return nil, errors.New("xmppclient: resume: the previous client had no resumable XEP-0198 session")
	}
	return connect(ctx, cfg, &resumeState{id: prev.smID, handled: prev.handled.Load(), jid: prev.jid})
}

func connect(ctx context.Context, cfg Config, resume *resumeState) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	local, domain, resource, err := splitJID(cfg.JID)
	if err != nil {
		return nil, err
	}
	if cfg.Resource == "" {
		cfg.Resource = resource
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("xmppclient: %w", err)
	}
	c := &Client{
		cfg:     cfg,
		conn:    conn,
		er:      NewElementReader(conn),
		local:   local,
		domain:  domain,
		pending: make(map[string]chan Stanza),
		box:     newMailbox(),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	// The login is synchronous; the context bounds it through the
	// connection's deadline, and cancelling the context unblocks it.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err = c.negotiate(resume)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = conn.Close()
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("xmppclient: log in as %s at %s: %w", cfg.JID, cfg.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	c.wmu.Lock()
	c.live = true
	c.wmu.Unlock()
	go c.readLoop()
	if cfg.Presence && resume == nil {
		if err := c.write("<presence/>"); err != nil {
			_ = c.Drop()
			return nil, err
		}
	}
	return c, nil
}

// negotiate runs the login on the still synchronous connection.
func (c *Client) negotiate(resume *resumeState) error {
	f, err := c.openStream()
	if err != nil {
		return err
	}
	if f.StartTLS != nil && f.StartTLS.Required != nil {
		return errors.New("the server requires STARTTLS; this client speaks plain TCP only")
	}
	if !slices.Contains(f.Mechanisms, "PLAIN") {
		return fmt.Errorf("the server offers no SASL PLAIN without TLS (it offers %v)", f.Mechanisms)
	}
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + c.local + "\x00" + c.cfg.Password))
	if err := c.write("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + creds + "</auth>"); err != nil {
		return err
	}
	st, err := c.nextNonStanza()
	if err != nil {
		return err
	}
	switch {
	case st.Name.Space == nsSASL && st.Name.Local == "success":
	case st.Name.Space == nsSASL && st.Name.Local == "failure":
		var v conditionText
		_ = st.Unmarshal(&v)
		cond, text := v.split(nsSASL)
		return &SASLError{Condition: cond, Text: text}
	default:
		return fmt.Errorf("unexpected answer to SASL auth: %s", st.Raw)
	}

	c.er.Reset() // RFC 6120 section 6.4.6: a new stream after SASL success
	if f, err = c.openStream(); err != nil {
		return err
	}
	if resume != nil {
		return c.resume(f, resume)
	}
	if f.Bind == nil {
		return errors.New("the server offers no resource binding")
	}
	bind := "<bind xmlns='" + nsBind + "'/>"
	if c.cfg.Resource != "" {
		bind = "<bind xmlns='" + nsBind + "'><resource>" + escape(c.cfg.Resource) + "</resource></bind>"
	}
	reply, err := c.negotiationIQ("<iq type='set' id='%s'>" + bind + "</iq>")
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	var b struct {
		JID string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
	}
	if err := reply.Unmarshal(&b); err != nil || b.JID == "" {
		return fmt.Errorf("bind: no JID in %s", reply.Raw)
	}
	c.jid = b.JID

	// RFC 3921 sessions: ejabberd and Prosody mark them optional (RFC 6121
	// dropped them), but an older server may still require one.
	if f.Session != nil && f.Session.Optional == nil {
		if _, err := c.negotiationIQ("<iq type='set' id='%s'><session xmlns='" + nsSession + "'/></iq>"); err != nil {
			return fmt.Errorf("session: %w", err)
		}
	}

	if c.cfg.SM {
		if f.SM == nil {
			return errors.New("the server does not offer XEP-0198 stream management")
		}
		if err := c.write("<enable xmlns='" + nsSM + "' resume='true'/>"); err != nil {
			return err
		}
		st, err := c.nextNonStanza()
		if err != nil {
			return err
		}
		switch {
		case st.Name.Space == nsSM && st.Name.Local == "enabled":
			if r := st.Attr("resume"); r != "true" && r != "1" {
				return errors.New("the server enabled XEP-0198 without resumption")
			}
			c.smID = st.Attr("id")
		case st.Name.Space == nsSM && st.Name.Local == "failed":
			var v conditionText
			_ = st.Unmarshal(&v)
			cond, _ := v.split(nsStanzas)
			return fmt.Errorf("XEP-0198 enable failed: %s", cond)
		default:
			return fmt.Errorf("unexpected answer to XEP-0198 enable: %s", st.Raw)
		}
	}
	return nil
}

func (c *Client) resume(f streamFeatures, r *resumeState) error {
	if f.SM == nil {
		return errors.New("the server does not offer XEP-0198 stream management")
	}
	if err := c.write(fmt.Sprintf("<resume xmlns='%s' h='%d' previd='%s'/>", nsSM, r.handled, escape(r.id))); err != nil {
		return err
	}
	st, err := c.nextNonStanza()
	if err != nil {
		return err
	}
	switch {
	case st.Name.Space == nsSM && st.Name.Local == "resumed":
		c.smID, c.jid = r.id, r.jid
		c.handled.Store(r.handled)
		return nil
	case st.Name.Space == nsSM && st.Name.Local == "failed":
		var v conditionText
		_ = st.Unmarshal(&v)
		cond, _ := v.split(nsStanzas)
		return fmt.Errorf("XEP-0198 resumption failed: %s", cond)
	default:
		return fmt.Errorf("unexpected answer to XEP-0198 resume: %s", st.Raw)
	}
}

type streamFeatures struct {
	StartTLS *struct {
		Required *struct{} `xml:"required"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Mechanisms []string  `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
	Bind       *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
	Session    *struct {
		Optional *struct{} `xml:"optional"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-session session"`
	SM *struct{} `xml:"urn:xmpp:sm:3 sm"`
}

// openStream sends a stream header and reads the server's header and
// features.
func (c *Client) openStream() (streamFeatures, error) {
	var f streamFeatures
	err := c.write("<?xml version='1.0'?><stream:stream xmlns='" + nsClient + "' xmlns:stream='" + nsStream +
		"' to='" + escape(c.domain) + "' version='1.0' xml:lang='en'>")
	if err != nil {
		return f, err
	}
	if c.header, err = c.er.ReadHeader(); err != nil {
		return f, err
	}
	c.trace("<<<", fmt.Sprintf("<stream:stream id='%s' from='%s' version='%s'>", c.header.ID, c.header.From, c.header.Version))
	st, err := c.nextNonStanza()
	if err != nil {
		return f, err
	}
	if st.Name.Space != nsStream || st.Name.Local != "features" {
		return f, fmt.Errorf("expected stream features, got %s", st.Raw)
	}
	if err := st.Unmarshal(&f); err != nil {
		return f, fmt.Errorf("stream features: %w", err)
	}
	return f, nil
}

// nextNonStanza reads during login until an element that is not a stanza
// arrives; stanzas (a message pushed early, say) go to the mailbox.
func (c *Client) nextNonStanza() (Stanza, error) {
	for {
		st, err := c.readElement()
		if err != nil || !st.isStanza() {
			return st, err
		}
		c.box.put(st)
	}
}

// negotiationIQ sends the IQ format (with one %s for the id) during login and
// waits for its reply; other stanzas go to the mailbox.
func (c *Client) negotiationIQ(format string) (Stanza, error) {
	id := newID()
	if err := c.write(fmt.Sprintf(format, id)); err != nil {
		return Stanza{}, err
	}
	for {
		st, err := c.readElement()
		if err != nil {
			return st, err
		}
		if st.Name.Space == nsClient && st.Name.Local == "iq" && st.ID() == id {
			if st.Type() == "error" {
				return st, parseStanzaError(st)
			}
			return st, nil
		}
		if st.isStanza() {
			c.box.put(st)
		}
	}
}

// readElement reads one element during login and turns a stream error or a
// closed stream into an error.
func (c *Client) readElement() (Stanza, error) {
	st, err := c.er.Next()
	if err != nil {
		return st, err
	}
	c.trace("<<<", st.Raw)
	if st.Name.Space == nsStream && st.Name.Local == "error" {
		return st, parseStreamError(st)
	}
	return st, nil
}

// readLoop runs once the login is done, until the stream ends.
func (c *Client) readLoop() {
	var err error
	for {
		var st Stanza
		if st, err = c.er.Next(); err != nil {
			break
		}
		c.trace("<<<", st.Raw)
		if st.Name.Space == nsStream && st.Name.Local == "error" {
			err = parseStreamError(st)
			// The server follows the error with </stream:stream> and closes
			// the connection. Answer, and read up to its end rather than
			// closing on unread bytes (which would reset the connection).
			_ = c.write("</stream:stream>")
			_ = c.conn.SetReadDeadline(time.Now().Add(c.cfg.Timeout))
			for {
				if _, e := c.er.Next(); e != nil {
					break
				}
			}
			break
		}
		c.dispatch(st)
	}
	c.finish(err)
}

func (c *Client) dispatch(st Stanza) {
	if st.Name.Space == nsSM {
		if st.Name.Local == "r" {
			// A failed write ends the stream; the reader notices on its own.
			_ = c.write(fmt.Sprintf("<a xmlns='%s' h='%d'/>", nsSM, c.handled.Load()))
		}
		return // <a/> from the server: we keep no outbound queue to trim
	}
	if st.isStanza() && c.smID != "" {
		c.handled.Add(1)
	}
	if st.Name.Space == nsClient && st.Name.Local == "iq" {
		switch st.Type() {
		case "result", "error":
			c.pmu.Lock()
			ch, ok := c.pending[st.ID()]
			delete(c.pending, st.ID())
			c.pmu.Unlock()
			if ok {
				ch <- st // buffered
				return
			}
		case "get":
			var ping struct {
				Ping *struct{} `xml:"urn:xmpp:ping ping"`
			}
			if st.Unmarshal(&ping) == nil && ping.Ping != nil {
				reply := "<iq type='result' id='" + escape(st.ID()) + "'"
				if from := st.From(); from != "" {
					reply += " to='" + escape(from) + "'"
				}
				_ = c.write(reply + "/>")
				return
			}
		}
	}
	c.box.put(st)
}

// finish runs when the reader stops: it closes the stream politely if the
// server ended it, and wakes everybody waiting.
func (c *Client) finish(err error) {
	var se *StreamError
	if errors.Is(err, ErrStreamClosed) || errors.As(err, &se) {
		_ = c.write("</stream:stream>") // no-op if we sent ours already
	}
	_ = c.conn.Close()
	switch {
	case c.closing.Load() && (se == nil):
		err = ErrClosed
	case se != nil, errors.Is(err, ErrStreamClosed):
	default:
		err = fmt.Errorf("xmppclient: connection lost: %w", err)
	}
	c.err = err
	c.box.close(err)
	close(c.done)
}

// Done is closed when the stream has ended, for whatever reason.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the stream ended: ErrClosed after Close or Drop,
// ErrStreamClosed if the server closed it, a *StreamError, or a wrapped
// network error. It is nil while the stream is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// JID returns the full JID the server bound.
func (c *Client) JID() string { return c.jid }

// Header returns the server's stream header (of the stream after SASL).
func (c *Client) Header() Header { return c.header }

// SMState returns the XEP-0198 state; ID is empty when SM is off.
func (c *Client) SMState() SMState { return SMState{ID: c.smID, Handled: c.handled.Load()} }

// Send writes one raw stanza (or several) after checking that it is
// well-formed XML, so that a typo in a test fails here rather than as a
// stream error from the server. The stanza inherits the stream's namespace
// (jabber:client); do not set xmlns on it.
func (c *Client) Send(raw string) error {
	if err := checkWellFormed(raw); err != nil {
		return err
	}
	return c.write(raw)
}

// SendPresence sends available presence, directed to to, or broadcast if to
// is empty.
func (c *Client) SendPresence(to string) error {
	if to == "" {
		return c.write("<presence/>")
	}
	return c.write("<presence to='" + escape(to) + "'/>")
}

// SendMessage sends a chat message with a body and returns its id.
func (c *Client) SendMessage(to, body string) (id string, err error) {
	id = newID()
	return id, c.write("<message type='chat' id='" + id + "' to='" + escape(to) + "'><body>" + escape(body) + "</body></message>")
}

// IQ sends a raw <iq type='get'/> or type='set' and returns the reply matched
// by id (an id is added when raw has none). An error reply is returned
// together with a *StanzaError.
func (c *Client) IQ(ctx context.Context, raw string) (Stanza, error) {
	start, err := checkWellFormedStart(raw)
	if err != nil {
		return Stanza{}, err
	}
	if start.Name.Local != "iq" {
		return Stanza{}, fmt.Errorf("xmppclient: IQ: not an iq: %s", raw)
	}
	var id, typ string
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "id":
			id = a.Value
		case a.Name.Space == "" && a.Name.Local == "type":
			typ = a.Value
		}
	}
	if typ != "get" && typ != "set" {
		return Stanza{}, fmt.Errorf("xmppclient: IQ: type must be get or set, not %q", typ)
	}
	if id == "" {
		id = newID()
		raw = insertAttr(raw, "id", id)
	}
	ch := make(chan Stanza, 1)
	c.pmu.Lock()
	if _, dup := c.pending[id]; dup {
		c.pmu.Unlock()
		return Stanza{}, fmt.Errorf("xmppclient: IQ: id %q is already waiting for a reply", id)
	}
	c.pending[id] = ch
	c.pmu.Unlock()
	defer func() {
		c.pmu.Lock()
		delete(c.pending, id)
		c.pmu.Unlock()
	}()

	if err := c.write(raw); err != nil {
		return Stanza{}, err
	}
	select {
	case st := <-ch:
		return iqReply(st)
	case <-ctx.Done():
		return Stanza{}, fmt.Errorf("xmppclient: no reply to iq %s: %w", id, ctx.Err())
	case <-c.done:
		select {
		case st := <-ch: // the reply came just before the end
			return iqReply(st)
		default:
			return Stanza{}, fmt.Errorf("xmppclient: no reply to iq %s: %w", id, c.err)
		}
	}
}

func iqReply(st Stanza) (Stanza, error) {
	if st.Type() == "error" {
		return st, parseStanzaError(st)
	}
	return st, nil
}

// Next takes the oldest stanza from the mailbox, waiting for one. After the
// stream has ended and the mailbox is empty it returns the reason (see Err).
func (c *Client) Next(ctx context.Context) (Stanza, error) {
	return c.box.take(ctx, func(Stanza) bool { return true })
}

// WaitFor takes the oldest stanza in the mailbox for which match is true,
// waiting for one; stanzas that do not match stay in the mailbox.
func (c *Client) WaitFor(ctx context.Context, match func(Stanza) bool) (Stanza, error) {
	return c.box.take(ctx, match)
}

// Queued returns a copy of the stanzas waiting in the mailbox.
func (c *Client) Queued() []Stanza { return c.box.snapshot() }

// Incoming returns a channel that delivers the mailbox's stanzas in arrival
// order and is closed once the stream has ended and the mailbox is empty, or
// when the client is closed. It takes from the same mailbox as Next and
// WaitFor: a program uses either the channel or those methods.
func (c *Client) Incoming() <-chan Stanza {
	c.inOnce.Do(func() {
		c.in = make(chan Stanza)
		go func() {
			defer close(c.in)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-c.quit:
					cancel()
				case <-ctx.Done():
				}
			}()
			for {
				st, err := c.Next(ctx)
				if err != nil {
					return
				}
				select {
				case c.in <- st:
				case <-c.quit:
					return
				}
			}
		}()
	})
	return c.in
}

// Close ends the stream: it sends </stream:stream>, waits up to the timeout
// for the server's, and closes the connection. Without an explicit
// unavailable presence the server generates one. Close on a closed client
// returns nil.
func (c *Client) Close() error {
	c.closing.Store(true)
	c.stopPump()
	select {
	case <-c.done:
		return nil
	default:
	}
	var err error
	if c.write("</stream:stream>") == nil {
		t := time.NewTimer(c.cfg.Timeout)
		select {
		case <-c.done:
		case <-t.C:
			err = fmt.Errorf("xmppclient: the server did not close the stream within %v", c.cfg.Timeout)
		}
		t.Stop()
	}
	_ = c.conn.Close()
	<-c.done
	return err
}

// CloseUnavailable sends unavailable presence, then closes like Close.
func (c *Client) CloseUnavailable() error {
	if err := c.write("<presence type='unavailable'/>"); err != nil && c.Err() == nil {
		_ = c.Drop()
		return err
	}
	return c.Close()
}

// Ack acknowledges (XEP-0198) every stanza received so far without waiting
// for the server to ask, as an app may before iOS suspends it: the server
// then holds nothing unacknowledged for this session (ejabberd publishes to
// XEP-0357 when a session goes into hibernation with some). It does nothing
// without stream management.
func (c *Client) Ack() error {
	if c.smID == "" {
		return nil
	}
	return c.write(fmt.Sprintf("<a xmlns='%s' h='%d'/>", nsSM, c.handled.Load()))
}

// Drop closes the TCP connection without ending the stream, as when a phone
// loses its network. With SM on, the server hibernates the session (XEP-0198
// resumption) instead of ending it.
func (c *Client) Drop() error {
	c.closing.Store(true)
	c.stopPump()
	_ = c.conn.Close()
	<-c.done
	return nil
}

func (c *Client) stopPump() { c.quitMu.Do(func() { close(c.quit) }) }

func (c *Client) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sentClose {
		return ErrClosed
	}
	if s == "</stream:stream>" {
		c.sentClose = true
	}
	if c.live {
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
	}
	if _, err := io.WriteString(c.conn, s); err != nil {
		if c.closing.Load() {
			return ErrClosed
		}
		return fmt.Errorf("xmppclient: write: %w", err)
	}
	c.trace(">>>", s)
	return nil
}

func (c *Client) trace(dir, s string) {
	if c.cfg.Trace == nil {
		return
	}
	who := c.jid
	if who == "" {
		who = c.cfg.JID
	}
	c.tmu.Lock()
	defer c.tmu.Unlock()
	fmt.Fprintf(c.cfg.Trace, "%s %s %s\n", who, dir, s)
}

func splitJID(s string) (local, domain, resource string, err error) {
	bare, resource, _ := strings.Cut(s, "/")
	local, domain, ok := strings.Cut(bare, "@")
	if !ok || local == "" || domain == "" {
		return "", "", "", fmt.Errorf("xmppclient: JID %q is not local@domain", s)
	}
	return local, domain, resource, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// checkWellFormed reports whether raw is a sequence of complete, well-formed
// elements (whitespace between them allowed).
func checkWellFormed(raw string) error {
	_, err := checkWellFormedStart(raw)
	return err
}

// checkWellFormedStart is checkWellFormed that also returns the first start tag.
func checkWellFormedStart(raw string) (xml.StartElement, error) {
	d := xml.NewDecoder(strings.NewReader(raw))
	var first xml.StartElement
	depth, elements := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return first, fmt.Errorf("xmppclient: malformed stanza %q: %w", raw, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if elements == 0 {
					first = t.Copy()
				}
				elements++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(strings.TrimSpace(string(t))) > 0 {
				return first, fmt.Errorf("xmppclient: text outside an element in %q", raw)
			}
		case xml.ProcInst, xml.Directive, xml.Comment:
			if depth == 0 {
				return first, fmt.Errorf("xmppclient: a stanza cannot hold %T: %q", tok, raw)
			}
		}
	}
	if elements == 0 {
		return first, fmt.Errorf("xmppclient: no element in %q", raw)
	}
	return first, nil
}

// insertAttr adds name='value' to the first start tag of the well-formed raw.
func insertAttr(raw, name, value string) string {
	i := strings.IndexByte(raw, '<') + 1
	for i < len(raw) && !strings.ContainsRune(" \t\r\n/>", rune(raw[i])) {
		i++
	}
	return raw[:i] + " " + name + "='" + escape(value) + "'" + raw[i:]
}
