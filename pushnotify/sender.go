package pushnotify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jinglepush/jinglepush/sessions"
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
	// ErrInvalid means APNs would refuse the push whenever it is sent: an
	// unknown kind, a token that is not hex, an empty or oversized payload.
	ErrInvalid = errors.New("pushnotify: invalid notification")
)

// removeTimeout bounds one Feedback.TokenDead call.
const removeTimeout = 2 * time.Second

// Config tunes a Sender. Zero values take the defaults in brackets.
type Config struct {
	Apps     []App
	Endpoint string         // replaces Apple's hosts for both environments (tests, proxies)
	RootCAs  *x509.CertPool // trusted CAs; nil: the system's
	DryRun   bool           // log pushes instead of sending them
	// LogBodies lets dry-run logs show what a message said and who sent
	// it; otherwise they are left out.
	LogBodies bool
	Workers   int // senders: requests in flight at most [16]
	// QueueSize bounds the pushes accepted and not yet being sent: waiting
	// for a sender or for their next attempt [10000].
	QueueSize       int
	MaxInflight     int           // requests in flight per APNs connection [100]
	Timeout         time.Duration // one request [10s]
	RetryMin        time.Duration // first backoff, ±50% jitter [200ms]
	RetryMax        time.Duration // longest backoff, ±50% jitter [5s]
	DefaultDeadline time.Duration // for pushes without a deadline [10m]
	// DrainTimeout bounds Close when its context has no deadline [10s].
	DrainTimeout time.Duration
	// BacklogCheck: a push that waited in the queue longer than this asks
	// Notification.Wanted before its first attempt too [250ms].
	BacklogCheck time.Duration
	// HoldEvery: a request still in flight after this asks
	// Notification.Wanted again, and again each HoldEvery until it is
	// answered. For a wake that renews its lease in sessions, so a push
	// that is only slow is not taken over by another process and sent
	// twice; a push no longer wanted (its call ended, or it was taken
	// over) is cut. 0: never (set it from sessions.Config.LeaseRenewal).
	HoldEvery time.Duration
	// Alerts are the texts of visible pushes; empty ones take the defaults.
	Alerts Alerts

	// roundTripper replaces the HTTP/2 transport of every client (tests:
	// an in-memory APNs whose timing runs under testing/synctest).
	roundTripper http.RoundTripper
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
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
	def(&c.Workers, d.Workers)
	def(&c.QueueSize, d.QueueSize)
	def(&c.MaxInflight, d.MaxInflight)
	defDur(&c.Timeout, d.Timeout)
	defDur(&c.RetryMin, d.RetryMin)
	defDur(&c.RetryMax, d.RetryMax)
	defDur(&c.DefaultDeadline, d.DefaultDeadline)
	defDur(&c.DrainTimeout, d.DrainTimeout)
	defDur(&c.BacklogCheck, d.BacklogCheck)
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	c.Alerts = c.Alerts.withDefaults()
}

// Sender sends Notifications to APNs: Push queues them, a fixed number of
// senders send them, and a push that must be retried waits for its next
// attempt on a timer, not in a sender, so fresh call pushes never queue
// behind the backoff of others.
type Sender struct {
	cfg      Config
	log      *slog.Logger
	feedback sessions.Feedback // dead tokens go back, "still ringing?" is asked; may be nil
	m        *metrics
	apps     map[string]*App // fixed at New: Reload changes credentials, never the apps
	// clients holds one client per app and environment; Reload swaps the
	// whole map, so a push reads it once per attempt and never locks.
	clients atomic.Pointer[map[clientKey]*client]
	alerts  atomic.Pointer[Alerts] // the texts of visible pushes, swapped by Reload
	// reloading serialises Reload (and keeps it away from Close's end);
	// running holds the apps with the credentials they run with, for it.
	reloading sync.Mutex
	running   []App

	// queue holds the pushes waiting for a sender: fresh ones and retries
	// whose time came. Its capacity is limit, so sending to it never blocks.
	queue chan *job
	limit int // QueueSize + Workers: pushes accepted and unfinished

	mu      sync.Mutex
	pending int               // accepted, unfinished: queued, sending or waiting to retry
	waiting map[*job]struct{} // waiting for their retry timer
	closed  bool              // Close was called: Push refuses
	drained chan struct{}     // closed once closed and pending is 0

	stopping atomic.Bool  // Close ran out of time: nothing more is sent
	lost     atomic.Int64 // pushes Close could not send
	inflight atomic.Int64

	stop      context.Context // cancelled when Close runs out of time: cuts requests
	stopNow   context.CancelFunc
	quit      chan struct{} // the senders return
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New builds a Sender and starts its senders. feedback, which may be nil,
// hears of dead tokens and is asked whether a call still rings before its
// push is retried.
func New(cfg Config, feedback sessions.Feedback, log *slog.Logger, reg prometheus.Registerer) (*Sender, error) {
	cfg.setDefaults()
	cfg.Apps = slices.Clone(cfg.Apps) // New settles their environment
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		cfg:      cfg,
		log:      log.With("component", "pushnotify"),
		feedback: feedback,
		apps:     make(map[string]*App),
		limit:    cfg.QueueSize + cfg.Workers,
		waiting:  make(map[*job]struct{}),
		drained:  make(chan struct{}),
		quit:     make(chan struct{}),
	}
	s.queue = make(chan *job, s.limit)
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.m = newMetrics(reg, gauges{
		queued: func() float64 { return float64(len(s.queue)) },
		retrying: func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.waiting))
		},
		inflight:   func() float64 { return float64(s.inflight.Load()) },
		unfinished: func() float64 { return float64(s.Unfinished()) },
	})

	for i := range s.cfg.Apps {
		app := &s.cfg.Apps[i]
		if err := app.validate(); err != nil {
			return nil, err
		}
		if _, dup := s.apps[app.BundleID]; dup {
			return nil, fmt.Errorf("pushnotify: app %s configured twice", app.BundleID)
		}
		if app.Environment != Sandbox {
			app.Environment = Production
		}
		s.apps[app.BundleID] = app
	}
	alerts := cfg.Alerts
	s.alerts.Store(&alerts)
	s.running = slices.Clone(s.cfg.Apps) // apart from s.apps, which pushes read while Reload writes this
	clients, _, err := s.buildClients(s.running, nil)
	if err != nil {
		return nil, err
	}
	s.clients.Store(&clients)
	for _, c := range clients {
		for _, kind := range topicKinds {
			s.unhealthy(c, kind).Set(0)
		}
	}
	for i := range s.running {
		s.showCredentials(&s.running[i])
	}

	for range cfg.Workers {
		s.wg.Add(1)
		go s.work()
	}
	return s, nil
}

// checkCertificate publishes when an app's certificate expires, and marks
// the app unhealthy when it already has: APNs would refuse every push.
func (s *Sender) checkCertificate(app *App) {
	leaf := app.certificate()
	if leaf == nil {
		s.m.certExpiry.DeleteLabelValues(app.BundleID) // token auth now: a key has no end date
		return
	}
	s.m.certExpiry.WithLabelValues(app.BundleID).Set(float64(leaf.NotAfter.Unix()))
	log := s.log.With("bundle_id", app.BundleID, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	switch left := time.Until(leaf.NotAfter); {
	case left <= 0:
		for _, env := range []string{Production, Sandbox} {
			for _, kind := range topicKinds {
				s.setFault(s.client(clientKey{app.BundleID, env}), kind, "certificate expired "+leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		log.Error("the app's APNs certificate has expired: renew it in the Apple developer account")
	case left < 30*24*time.Hour:
		log.Warn("the app's APNs certificate expires soon: renew it in the Apple developer account", "days_left", int(left.Hours()/24))
	}
}

// Unfinished is how many pushes were accepted and have not reached a final
// result: queued, being sent or waiting for a retry. 0 means idle.
func (s *Sender) Unfinished() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// HasApp reports whether bundleID is a configured app.
func (s *Sender) HasApp(bundleID string) bool {
	_, ok := s.apps[bundleID]
	return ok
}

// Push queues n without waiting. It fails at once with ErrQueueFull when
// the queue is full, ErrClosed after Close, ErrUnknownApp for a bundle id
// that is not configured and ErrInvalid for a push APNs would refuse.
// Every refusal is counted.
func (s *Sender) Push(_ context.Context, n Notification) error {
	app, ok := s.apps[n.BundleID]
	if !ok {
		s.m.dropped.WithLabelValues(n.kindLabel(), "unknown_app").Inc()
		return fmt.Errorf("%w: %s", ErrUnknownApp, n.BundleID)
	}
	if label, err := n.check(); err != nil {
		s.m.dropped.WithLabelValues(n.kindLabel(), label).Inc()
		return err
	}
	j := &job{n: complete(n, app, s.cfg.DefaultDeadline), queued: time.Now()}

	// The caller logs a refusal: it knows the call.
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		s.m.dropped.WithLabelValues(string(n.Kind), "closed").Inc()
		return ErrClosed
	case s.pending >= s.limit:
		s.mu.Unlock()
		s.m.dropped.WithLabelValues(string(n.Kind), "queue_full").Inc()
		return ErrQueueFull
	}
	s.pending++
	s.queue <- j // never blocks: the queue can hold every pending push
	s.mu.Unlock()
	return nil
}

// complete fills in what a Notification may leave out: the app's default
// environment, the deadline, a VoIP push's expiration and the apns-id.
func complete(n Notification, app *App, defaultDeadline time.Duration) Notification {
	switch n.Environment {
	case "":
		n.Environment = app.Environment
	case Sandbox:
	default:
		n.Environment = Production
	}
	if n.Deadline.IsZero() {
		n.Deadline = time.Now().Add(defaultDeadline)
	}
	if !n.Expiration.IsZero() && n.Expiration.Before(n.Deadline) {
		n.Deadline = n.Expiration // APNs would not keep it longer anyway
	}
	if n.Kind == KindVoIP && n.Expiration.IsZero() {
		n.Expiration = n.Deadline
	}
	if n.ID == "" {
		n.ID = uuid.NewString()
	}
	return n
}

// Healthy returns an error naming every app topic whose last APNs answer
// was an operator error (bad credentials, topic or TLS), nil when there is
// none.
func (s *Sender) Healthy() error {
	var errs []string
	for _, c := range *s.clients.Load() {
		for i, k := range topicKinds {
			if f := c.faults[i].Load(); f != nil {
				errs = append(errs, fmt.Sprintf("%s (%s): %s", c.topic(k), c.key.environment, *f))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return fmt.Errorf("pushnotify: apps failing: %s", strings.Join(errs, "; "))
}

// setFault marks the topic of kind unhealthy with msg.
func (s *Sender) setFault(c *client, k Kind, msg string) {
	if old := c.faults[topicIndex(k)].Swap(&msg); old == nil {
		s.unhealthy(c, k).Set(1)
	}
}

// clearFault marks the topic of kind healthy.
func (s *Sender) clearFault(c *client, k Kind) {
	if c.faults[topicIndex(k)].Swap(nil) != nil {
		s.unhealthy(c, k).Set(0)
		s.log.Info("APNs accepts the app again", "bundle_id", c.key.bundleID, "environment", c.key.environment, "topic", c.topic(k))
	}
}

func (s *Sender) unhealthy(c *client, k Kind) prometheus.Gauge {
	return s.m.unhealthy.WithLabelValues(c.key.bundleID, c.key.environment, c.topic(k))
}

// Close stops taking pushes and sends the ones already accepted whose
// deadline is still ahead, retries included, within ctx (or
// Config.DrainTimeout when ctx has no deadline). When time runs out,
// requests in flight are cut and what is left is counted and logged, never
// dropped silently; the error says how many. Later calls return the first
// call's result.
func (s *Sender) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown(ctx) })
	return s.closeErr
}

func (s *Sender) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	left := s.pending
	if left == 0 {
		close(s.drained)
	}
	s.mu.Unlock()
	if left > 0 {
		s.log.Info("sending the pushes still queued before stopping", "count", left)
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DrainTimeout)
		defer cancel()
	}
	select {
	case <-s.drained:
	case <-ctx.Done():
		s.abort()
		<-s.drained // quick now: nothing more is sent
	}
	close(s.quit)
	s.wg.Wait()
	s.stopNow()
	s.reloading.Lock() // a Reload in progress would leave connections open
	for _, c := range *s.clients.Load() {
		c.closeIdle()
	}
	s.reloading.Unlock()
	if n := s.lost.Load(); n > 0 {
		s.log.Error("stopped with pushes unsent", "count", n)
		return fmt.Errorf("pushnotify: shutdown: %d pushes unsent", n)
	}
	return nil
}

// abort ends the drain: pushes waiting to retry are given up, requests in
// flight are cut, and the senders give up what is still queued.
func (s *Sender) abort() {
	s.mu.Lock()
	s.stopping.Store(true)
	waiting := s.waiting
	s.waiting = make(map[*job]struct{})
	s.mu.Unlock()
	s.stopNow()
	for j := range waiting {
		j.timer.Stop() // if it fired already, wake finds j gone
		s.giveUp(j, "shutdown")
	}
}
