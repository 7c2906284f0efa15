package pushnotify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

// Errors of Push.
var (
	// ErrQueueFull means every sender is busy and the queue is full: the
	// caller learns at once instead of waiting.
	ErrQueueFull = errors.New("pushnotify: queue full")
	// ErrClosed means the Sender is shutting down.
	ErrClosed = errors.New("pushnotify: sender closed")
	// ErrUnknownApp means the push names a bundle id no app has.
	ErrUnknownApp = errors.New("pushnotify: unknown app")
)

// TokenRemover is told about tokens APNs called dead (package sessions).
type TokenRemover interface {
	RemoveToken(ctx context.Context, account, deviceID, token string) error
}

// Config tunes a Sender. Zero values take the defaults in brackets.
type Config struct {
	Apps            []App
	Endpoint        string         // replaces Apple's hosts for both environments (tests, proxies)
	RootCAs         *x509.CertPool // trusted CAs; nil: the system's
	DryRun          bool           // log pushes instead of sending them
	Workers         int            // senders [16]
	QueueSize       int            // pushes waiting for a sender [10000]
	MaxInflight     int            // requests in flight per APNs connection [100]
	Timeout         time.Duration  // per request [10s]
	RetryMin        time.Duration  // first backoff [200ms]
	RetryMax        time.Duration  // longest backoff [5s]
	DefaultDeadline time.Duration  // for pushes without a deadline [10m]
	// DrainTimeout bounds Close when its context has no deadline [10s].
	DrainTimeout time.Duration
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Workers, 16)
	def(&c.QueueSize, 10000)
	def(&c.MaxInflight, 100)
	defDur(&c.Timeout, 10*time.Second)
	defDur(&c.RetryMin, 200*time.Millisecond)
	defDur(&c.RetryMax, 5*time.Second)
	defDur(&c.DefaultDeadline, 10*time.Minute)
	defDur(&c.DrainTimeout, 10*time.Second)
}

// Sender sends Notifications to APNs from a bounded queue.
type Sender struct {
	cfg     Config
	log     *slog.Logger
	remover TokenRemover
	m       *metrics
	apps    map[string]*App
	clients map[clientKey]*client

	queue    chan Notification
	mu       sync.RWMutex // closed and close(queue) versus Push
	closed   bool
	wg       sync.WaitGroup
	inflight atomic.Int64

	// stop aborts requests still running when Close runs out of time.
	stop    context.Context
	stopNow context.CancelFunc
}

type clientKey struct{ bundleID, environment string }

// client is one APNs HTTP/2 connection pool for one app and environment.
type client struct {
	key   clientKey
	apns  *apns2.Client
	token *token.Token           // shared by the clients of one signing key; nil with certificates
	slots chan struct{}          // in-flight limit
	fault atomic.Pointer[string] // last operator error; nil while healthy
}

// New builds a Sender and starts its workers. remover may be nil.
func New(cfg Config, remover TokenRemover, log *slog.Logger, reg prometheus.Registerer) (*Sender, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		cfg:     cfg,
		log:     log.With("component", "pushnotify"),
		remover: remover,
		apps:    make(map[string]*App),
		clients: make(map[clientKey]*client),
		queue:   make(chan Notification, cfg.QueueSize),
	}
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.m = newMetrics(reg, func() float64 { return float64(len(s.queue)) })

	tokens := make(map[string]*token.Token) // one JWT per signing key
	for i := range cfg.Apps {
		app := &cfg.Apps[i]
		if err := app.validate(); err != nil {
			return nil, err
		}
		if _, dup := s.apps[app.BundleID]; dup {
			return nil, fmt.Errorf("pushnotify: app %s configured twice", app.BundleID)
		}
		s.apps[app.BundleID] = app
		if cfg.DryRun {
			continue
		}
		if !app.hasCredentials() {
			return nil, fmt.Errorf("pushnotify: app %s has no credentials (set a key or a certificate, or dry_run)", app.BundleID)
		}
		var tok *token.Token
		if app.AuthKey != nil {
			id := app.TeamID + "/" + app.KeyID
			if tok = tokens[id]; tok == nil {
				tok = &token.Token{AuthKey: app.AuthKey, KeyID: app.KeyID, TeamID: app.TeamID}
				tokens[id] = tok
			}
		}
		for _, env := range []string{Production, Sandbox} {
			k := clientKey{app.BundleID, env}
			s.clients[k] = s.newClient(k, app, tok)
		}
	}

	for range cfg.Workers {
		s.wg.Add(1)
		go s.work()
	}
	return s, nil
}

func (s *Sender) newClient(k clientKey, app *App, tok *token.Token) *client {
	tlsConf := &tls.Config{RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if app.Certificate != nil {
		tlsConf.Certificates = []tls.Certificate{*app.Certificate}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}
	transport := &http2.Transport{
		TLSClientConfig: tlsConf,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{NetDialer: dialer, Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
		// HTTP/2 PINGs notice a dead connection before a call push waits on it.
		ReadIdleTimeout: 15 * time.Second,
		PingTimeout:     5 * time.Second,
	}
	host := s.cfg.Endpoint
	if host == "" {
		host = apns2.HostProduction
		if k.environment == Sandbox {
			host = apns2.HostDevelopment
		}
	}
	c := &apns2.Client{
		Host:       strings.TrimRight(host, "/"),
		HTTPClient: &http.Client{Transport: transport, Timeout: s.cfg.Timeout},
		Token:      tok,
	}
	if app.Certificate != nil {
		c.Certificate = *app.Certificate
	}
	return &client{key: k, apns: c, token: tok, slots: make(chan struct{}, s.cfg.MaxInflight)}
}

// HasApp reports whether bundleID is a configured app.
func (s *Sender) HasApp(bundleID string) bool {
	_, ok := s.apps[bundleID]
	return ok
}

// Push queues n without waiting. It fails at once with ErrQueueFull when
// the queue is full, ErrClosed after Close, and ErrUnknownApp for a bundle
// id that is not configured.
func (s *Sender) Push(_ context.Context, n Notification) error {
	if _, ok := s.apps[n.BundleID]; !ok {
		s.m.dropped.WithLabelValues(string(n.Kind), "unknown_app").Inc()
		return fmt.Errorf("%w: %s", ErrUnknownApp, n.BundleID)
	}
	if n.Environment != Sandbox {
		n.Environment = Production
	}
	if n.Deadline.IsZero() {
		n.Deadline = time.Now().Add(s.cfg.DefaultDeadline)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.m.dropped.WithLabelValues(string(n.Kind), "shutdown").Inc()
		return ErrClosed
	}
	select {
	case s.queue <- n:
		return nil
	default:
		s.m.dropped.WithLabelValues(string(n.Kind), "queue_full").Inc()
		s.log.Warn("push queue full", "kind", n.Kind, "call_id", n.CallID, "account", n.Account, "token", tokenPrefix(n.Token))
		return ErrQueueFull
	}
}

// Healthy returns an error naming every app whose last APNs answer was an
// operator error (bad credentials or topic), nil when there is none.
func (s *Sender) Healthy() error {
	var errs []string
	for _, c := range s.clients {
		if f := c.fault.Load(); f != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): %s", c.key.bundleID, c.key.environment, *f))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return fmt.Errorf("pushnotify: apps failing: %s", strings.Join(errs, "; "))
}

// Close stops taking pushes and sends the ones already queued whose
// deadline is still ahead, within ctx (or Config.DrainTimeout when ctx has no
// deadline). What cannot be sent in time is counted and logged, never
// dropped silently.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DrainTimeout)
		defer cancel()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.stopNow()
		return nil
	case <-ctx.Done():
	}
	// Out of time: abort what runs; the workers count what is left.
	left := len(s.queue) + int(s.inflight.Load())
	s.stopNow()
	<-done
	s.log.Error("shutdown left pushes unsent", "count", left)
	return fmt.Errorf("pushnotify: shutdown: %d pushes unsent", left)
}

func (s *Sender) work() {
	defer s.wg.Done()
	for n := range s.queue {
		s.inflight.Add(1)
		s.deliver(n)
		s.inflight.Add(-1)
	}
}

// deliver sends one push, retrying what may succeed later until the push's
// deadline, and records its final result.
func (s *Sender) deliver(n Notification) {
	log := s.log.With("kind", n.Kind, "call_id", n.CallID, "account", n.Account, "device", n.DeviceID, "token", tokenPrefix(n.Token))
	if s.stop.Err() != nil {
		s.m.dropped.WithLabelValues(string(n.Kind), "shutdown").Inc()
		log.Error("push not sent: shutting down")
		return
	}
	if !time.Now().Before(n.Deadline) {
		s.m.dropped.WithLabelValues(string(n.Kind), "expired").Inc()
		log.Warn("push not sent: its deadline passed while queued")
		return
	}
	if s.cfg.DryRun {
		s.logDryRun(log, n)
		s.m.pushes.WithLabelValues(string(n.Kind), "dry_run").Inc()
		return
	}
	c := s.clients[clientKey{n.BundleID, n.Environment}]

	ctx, cancel := context.WithDeadline(s.stop, n.Deadline)
	defer cancel()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = s.cfg.RetryMin
	bo.MaxInterval = s.cfg.RetryMax

	var last attempt
	lastLogged := ""
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		last = s.attempt(ctx, c, n)
		switch last.outcome {
		case sent:
			return struct{}{}, nil
		case retryLater, refreshRetry:
			s.m.retries.WithLabelValues(string(n.Kind), last.result).Inc()
			// Log a failing attempt only when the error changes.
			if msg := last.String(); msg != lastLogged {
				log.Warn("APNs attempt failed, retrying", "result", last.result, "error", last.err)
				lastLogged = msg
			}
			return struct{}{}, last
		}
		return struct{}{}, backoff.Permanent(last)
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))

	result := last.result
	switch {
	case err == nil:
		log.Debug("push sent", "apns_id", last.apnsID)
	case last.outcome == deadToken:
		s.removeToken(log, n, last.result)
	case last.outcome == operatorErr:
		log.Error("APNs refused the app's credentials or topic: check the [[apns.apps]] entry", "bundle_id", n.BundleID, "environment", n.Environment, "result", last.result)
	case last.outcome == failOnce:
		log.Error("APNs rejected the push", "result", last.result, "status", last.status)
	default: // retries ran out of time
		result = "deadline"
		if s.stop.Err() != nil {
			result = "shutdown"
		}
		log.Error("push given up", "reason", result, "last_result", last.result, "error", last.err)
	}
	s.m.pushes.WithLabelValues(string(n.Kind), result).Inc()
}

// attempt is the answer to one APNs request.
type attempt struct {
	outcome outcome
	result  string // metric label
	status  int
	apnsID  string
	err     error
}

func (a attempt) Error() string {
	if a.err != nil {
		return a.result + ": " + a.err.Error()
	}
	return a.result
}

func (a attempt) String() string { return a.Error() }

// attempt sends n once.
func (s *Sender) attempt(ctx context.Context, c *client, n Notification) attempt {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return attempt{outcome: retryLater, result: "deadline", err: ctx.Err()}
	}
	start := time.Now()
	res, err := c.apns.PushWithContext(ctx, n.apns())
	<-c.slots

	var a attempt
	if err != nil {
		a = attempt{outcome: retryLater, result: "network", err: err}
	} else {
		a = attempt{
			outcome: classify(res.StatusCode, res.Reason),
			result:  resultLabel(res.StatusCode, res.Reason),
			status:  res.StatusCode,
			apnsID:  res.ApnsID,
		}
		if res.Reason != "" {
			a.err = fmt.Errorf("APNs %d %s", res.StatusCode, res.Reason)
		}
	}
	s.m.requests.WithLabelValues(string(n.Kind), a.result).Observe(time.Since(start).Seconds())

	switch a.outcome {
	case sent:
		if c.fault.Swap(nil) != nil {
			s.m.unhealthy.WithLabelValues(c.key.bundleID, c.key.environment).Set(0)
			s.log.Info("APNs accepts the app again", "bundle_id", c.key.bundleID, "environment", c.key.environment)
		}
	case operatorErr:
		msg := a.result
		c.fault.Store(&msg)
		s.m.unhealthy.WithLabelValues(c.key.bundleID, c.key.environment).Set(1)
	case refreshRetry:
		c.refreshToken()
	}
	return a
}

// refreshToken makes the next request sign a new JWT, unless the current
// one is younger than 20 minutes: Apple answers TooManyProviderTokenUpdates
// to faster refreshes, and a young token rejected as expired points at a
// clock problem that a new token would not fix.
func (c *client) refreshToken() {
	if c.token == nil {
		return
	}
	c.token.Lock()
	defer c.token.Unlock()
	if time.Now().Unix()-c.token.IssuedAt >= int64((20 * time.Minute).Seconds()) {
		c.token.IssuedAt = 0
	}
}

func (s *Sender) removeToken(log *slog.Logger, n Notification, reason string) {
	s.m.removed.WithLabelValues(reason).Inc()
	log.Info("APNs says the token is dead: removing it", "result", reason)
	if s.remover == nil || n.Account == "" || n.DeviceID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.remover.RemoveToken(ctx, n.Account, n.DeviceID, n.Token); err != nil {
		log.Error("could not remove a dead token", "error", err)
	}
}

func (s *Sender) logDryRun(log *slog.Logger, n Notification) {
	exp := int64(0)
	if !n.Expiration.IsZero() {
		exp = n.Expiration.Unix()
	}
	log.Info("push (dry run)",
		"apns_push_type", string(n.pushType()),
		"apns_topic", n.Topic(),
		"apns_priority", n.Priority(),
		"apns_expiration", exp,
		"apns_collapse_id", n.CollapseID,
		"environment", n.Environment,
		"payload", string(n.Payload),
	)
}
