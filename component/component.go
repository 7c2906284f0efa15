package component

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp"
	xmppcomponent "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/sessions"
)

// Backend does the work behind the stanzas (package sessions). Each method
// may block on Redis; the component calls them from its workers only.
type Backend interface {
	Call(ctx context.Context, ev jingle.CallEvent) error
	Presence(ctx context.Context, p jingle.Presence) error
	Publish(ctx context.Context, server jid.JID, pub jingle.Publish) error
	Register(ctx context.Context, r sessions.Registration) (sessions.Device, error)
	Unregister(ctx context.Context, account, deviceID string) error
}

// Config tunes a Component. Zero values take the defaults in brackets.
type Config struct {
	Server        string        // the server's component port, host:port
	Domain        string        // this component's JID
	Secret        string        // the handshake secret
	ServedDomains []string      // the users' domains: trusted forwarders, allowed registrants
	ReconnectMin  time.Duration // [500ms]
	ReconnectMax  time.Duration // [30s]
	Keepalive     time.Duration // whitespace keepalive interval; 0 disables
	Workers       int           // per-account queues [8]
	QueueSize     int           // items per queue [1024]
	MaxStanzaSize int           // larger stanzas are skipped [65536]
	LogXML        bool          // log every stanza at debug level
	Version       string        // answered to jabber:iq:version
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = d.ReconnectMin
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = d.ReconnectMax
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.MaxStanzaSize <= 0 {
		c.MaxStanzaSize = d.MaxStanzaSize
	}
	if c.Version == "" {
		c.Version = d.Version
	}
}

// Component is one XEP-0114 connection, kept up until its context ends.
type Component struct {
	cfg     Config
	domain  jid.JID
	backend Backend
	log     *slog.Logger
	m       *metrics
	served  map[string]bool
	seed    maphash.Seed

	queues []chan work
	// unfinished counts work items queued or being handled: 0 means
	// every stanza read so far is done with.
	unfinished atomic.Int64
	workers    sync.WaitGroup
	connected  atomic.Bool
	// out is the session of the current connection, for replies; nil
	// between connections.
	out atomic.Pointer[stream_]
}

// New returns a Component; Run connects it.
func New(cfg Config, backend Backend, log *slog.Logger, reg prometheus.Registerer) (*Component, error) {
	cfg.setDefaults()
	domain, err := jid.Parse(cfg.Domain)
	if err != nil || domain.Localpart() != "" || domain.Resourcepart() != "" {
		return nil, fmt.Errorf("component: domain %q is not a domain JID", cfg.Domain)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Component{
		cfg:     cfg,
		domain:  domain,
		backend: backend,
		log:     log.With("component", "xmpp"),
		served:  make(map[string]bool),
		seed:    maphash.MakeSeed(),
		queues:  make([]chan work, cfg.Workers),
	}
	for _, d := range cfg.ServedDomains {
		c.served[strings.ToLower(d)] = true
	}
	for i := range c.queues {
		c.queues[i] = make(chan work, cfg.QueueSize)
	}
	c.m = newMetrics(reg, c.queueLength, func() float64 { return float64(c.unfinished.Load()) }, c.connected.Load)
	return c, nil
}

// Connected reports whether the component stream is up.
func (c *Component) Connected() bool { return c.connected.Load() }

// Run connects to the server and serves the stream, reconnecting with
// exponential backoff and jitter whenever the connection fails, until ctx
// ends. It then closes the stream, lets the workers finish what was queued
// and returns.
func (c *Component) Run(ctx context.Context) error {
	for i := range c.queues {
		c.workers.Add(1)
		go c.work(c.queues[i])
	}
	defer func() {
		for _, q := range c.queues {
			close(q)
		}
		c.workers.Wait()
	}()

	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.cfg.ReconnectMin
	bo.MaxInterval = c.cfg.ReconnectMax
	bo.Reset()
	standby := false
	for {
		up, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if up {
			// A session that got through the handshake starts the backoff over.
			bo.Reset()
			standby = false
		}
		wait := bo.NextBackOff()
		switch {
		case !errors.Is(err, errStandby):
			c.log.Warn("component stream down, reconnecting", "error", err, "in", wait.Round(time.Millisecond))
		case !standby:
			// Said once: a standby is turned away at every attempt.
			standby = true
			c.log.Info("another process holds the component connection: waiting as its hot standby", "server", c.cfg.Server, "retry_every_at_most", c.cfg.ReconnectMax)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// errStandby means the server turned the handshake away because another
// process holds the component's connection (a stream error <conflict/>).
var errStandby = errors.New("component: another process holds the component connection")

// stream_ is one connected session and what writing to it needs.
type stream_ struct {
	s    *xmpp.Session
	conn net.Conn
	mu   sync.Mutex // one writer at a time: replies, keepalives, close
}

// send writes one element to the stream within timeout; safe for
// concurrent use.
//
// The deadline is set on the connection here, not through a context:
// mellium applies a context's end by setting the connection's write
// deadline into the past from a goroutine, which can race with the context
// being cancelled as Send returns and then fail the next writer's write.
// Its context is therefore one that never ends.
func (st *stream_) send(timeout time.Duration, r xml.TokenReader) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	_ = st.conn.SetWriteDeadline(time.Now().Add(timeout))
	defer st.conn.SetWriteDeadline(time.Time{})
	return st.s.Send(context.Background(), r)
}

// session dials, shakes hands and serves one connection. up reports
// whether the handshake succeeded.
func (c *Component) session(ctx context.Context) (up bool, err error) {
	c.m.connects.WithLabelValues("attempt").Inc()
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Server)
	if err != nil {
		c.m.connects.WithLabelValues("dial_error").Inc()
		return false, fmt.Errorf("component: dial %s: %w", c.cfg.Server, err)
	}
	defer conn.Close()
	rc := newReadConn(conn)

	// The handshake's time limit is a connection deadline rather than a
	// context that is cancelled afterwards (see stream_.send for why).
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	s, err := xmppcomponent.NewSession(ctx, c.domain, []byte(c.cfg.Secret), rc)
	_ = conn.SetDeadline(time.Time{})
	if err != nil {
		var se stream.Error
		if errors.As(err, &se) && se.Err == "conflict" {
			// Prosody takes one connection per component: another process
			// has it, and this one waits to take over when it goes.
			c.m.connects.WithLabelValues("standby").Inc()
			return false, errStandby
		}
		if errors.As(err, &se) {
			c.m.connects.WithLabelValues("refused").Inc()
			c.log.Error("server refused the component: check xmpp.domain and xmpp.secret against the server's component settings",
				"server", c.cfg.Server, "domain", c.cfg.Domain, "stream_error", se.Err, "text", se.Text)
			return false, fmt.Errorf("component: handshake refused: %w", err)
		}
		c.m.connects.WithLabelValues("handshake_error").Inc()
		return false, fmt.Errorf("component: handshake: %w", err)
	}
	c.m.connects.WithLabelValues("connected").Inc()
	c.log.Info("component connected", "server", c.cfg.Server, "domain", c.cfg.Domain)

	st := &stream_{s: s, conn: conn}
	c.out.Store(st)
	c.connected.Store(true)
	defer func() {
		c.connected.Store(false)
		c.out.CompareAndSwap(st, nil)
	}()

	// Closing: on ctx end, end our stream and give the server a moment to
	// end its own before the connection goes.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			st.mu.Lock()
			_ = s.Close()
			st.mu.Unlock()
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		}
	}()
	if c.cfg.Keepalive > 0 {
		go c.keepalive(st, done)
	}

	err = c.read(ctx, st, newFramer(rc.r, c.cfg.MaxStanzaSize))
	if errors.Is(err, errStreamEnd) {
		st.mu.Lock()
		_ = s.Close()
		st.mu.Unlock()
	}
	return true, err
}

// keepalive writes a space every interval: a dead connection then fails a
// write and is replaced, even while the server sends nothing.
func (c *Component) keepalive(st *stream_, done <-chan struct{}) {
	t := time.NewTicker(c.cfg.Keepalive)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			st.mu.Lock()
			_ = st.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, err := io.WriteString(st.conn, " ")
			_ = st.conn.SetWriteDeadline(time.Time{})
			st.mu.Unlock()
			if err != nil {
				_ = st.conn.Close()
				return
			}
		}
	}
}

// read is the stream loop: it frames, classifies and dispatches stanzas,
// and never waits on anything but the connection.
func (c *Component) read(ctx context.Context, st *stream_, f *framer) error {
	for {
		raw, err := f.next()
		if f.oversize > 0 {
			c.m.dropped.WithLabelValues("oversize").Add(float64(f.oversize))
			c.log.Warn("stanzas over xmpp.max_stanza_size skipped", "count", f.oversize, "max", c.cfg.MaxStanzaSize)
			f.oversize = 0
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if isStreamErrorElement(raw) {
			c.log.Error("stream error from the server", "xml", string(raw))
			return fmt.Errorf("component: stream error: %s", raw)
		}
		if c.cfg.LogXML {
			c.log.Debug("RECV", "xml", string(jingle.Redact(raw)))
		}
		c.dispatch(ctx, st, raw)
	}
}

func isStreamErrorElement(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte("<stream:error"))
}
