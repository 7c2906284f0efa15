package component

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	xmppcomponent "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
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
	// Rosters, if set, reads users' rosters through this component's
	// stream (XEP-0356), for sessions.Rosters.
	Rosters *Rosters
	// DrainTimeout bounds how long stopping waits for the queued stanzas
	// to be handled; the rest are dropped and counted.
	DrainTimeout time.Duration
	Version      string // answered to jabber:iq:version
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
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = d.DrainTimeout
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
	dropped    atomic.Int64 // stanzas left when the drain ran out
	workers    sync.WaitGroup
	connected  atomic.Bool
	// out is the session of the current connection, for replies; nil
	// between connections.
	out     atomic.Pointer[stream_]
	limited logLimiter
	// drain ends when shutting down has waited long enough for the
	// workers: what is still queued then is dropped, counted and logged.
	drain     context.Context
	drainStop context.CancelFunc
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
	c.drain, c.drainStop = context.WithCancel(context.Background())
	if cfg.Rosters != nil {
		cfg.Rosters.attach(c)
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
	defer c.stopWorkers()

	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.cfg.ReconnectMin
	bo.MaxInterval = c.cfg.ReconnectMax
	bo.Reset()
	for {
		up, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if up {
			// A session that got through the handshake starts the backoff over.
			bo.Reset()
		}
		wait := bo.NextBackOff()
		if strings.Contains(err.Error(), "component: standby") {
			// A standby asks again soon: the takeover time is this wait.
			wait = c.cfg.ReconnectMin
		} else {
			c.log.Warn("component stream down, reconnecting", "error", err, "in", wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// stopWorkers lets the workers finish what is queued, for DrainTimeout at
// most; the stanzas still queued then are dropped, counted and logged.
func (c *Component) stopWorkers() {
	for _, q := range c.queues {
		close(q)
	}
	t := time.AfterFunc(c.cfg.DrainTimeout, c.drainStop)
	c.workers.Wait()
	t.Stop()
	c.drainStop()
	if n := c.dropped.Load(); n > 0 {
		c.log.Error("stopped with stanzas not handled", "count", n, "drain_timeout", c.cfg.DrainTimeout)
	}
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
			// holds it, and this one waits to take over.
			c.m.connects.WithLabelValues("standby").Inc()
			if c.limited.first("standby") {
				c.log.Info("another process holds the component connection: waiting as a hot standby", "server", c.cfg.Server, "domain", c.cfg.Domain)
			}
			return false, fmt.Errorf("component: standby: %w", err)
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

	st := newStream(s, conn)
	go c.writer(st, c.cfg.Keepalive)
	c.out.Store(st)
	c.connected.Store(true)
	defer func() {
		c.connected.Store(false)
		c.out.CompareAndSwap(st, nil)
	}()

	// Closing: on ctx end (or the server's end of its stream), the writer
	// ends ours and gives the server a moment to end its own.
	stop := context.AfterFunc(ctx, st.quit)
	defer stop()
	err = c.read(ctx, st, newFramer(rc.r, c.cfg.MaxStanzaSize))
	st.quit()
	<-st.done
	return true, err
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
			for _, head := range f.heads {
				c.answerOversize(st, head)
			}
			f.heads = f.heads[:0]
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if raw == nil {
			continue // skipped: too large
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

// answerOversize answers an IQ that was too large to read with an error,
// so that its sender learns at once rather than by a timeout. head is its
// start tag.
func (c *Component) answerOversize(st *stream_, head []byte) {
	if jingle.Classify(head) != jingle.KindIQ || len(head) < 2 {
		return
	}
	empty := append(bytes.TrimSuffix(head[:len(head)-1], []byte("/")), "/>"...)
	iq, _ := jingle.ParseIQ(empty)
	if iq.ID == "" || (iq.Type != stanza.GetIQ && iq.Type != stanza.SetIQ) {
		return
	}
	c.replyErrorNow(st, iq.IQ, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
		Text: map[string]string{"": fmt.Sprintf("the request is larger than %d bytes", c.cfg.MaxStanzaSize)}})
}

func isStreamErrorElement(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte("<stream:error"))
}
