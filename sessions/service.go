package sessions

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp/jid"
)

// ErrForeignDomain means a stanza concerns an account of a domain this
// service does not serve.
var ErrForeignDomain = errors.New("sessions: domain not served")

// App is a configured app as registrations see it.
type App struct {
	BundleID    string
	Environment string // the default environment of its devices
}

// Ring-from choices: who may wake a user's phone.
const (
	RingFromAnyone   = "anyone"
	RingFromContacts = "contacts" // callers in the user's roster (subscription from or both)
)

// Rosters tells whether a caller is a contact of a user (package
// component asks the user's server, XEP-0356).
type Rosters interface {
	// Subscribed reports whether contact (a bare JID) is in account's
	// roster with a subscription of from or both.
	Subscribed(ctx context.Context, account, contact string) (bool, error)
}

// Config tunes a Service. Zero values take the defaults of DefaultConfig,
// except where a field says 0 means "off".
type Config struct {
	ServedDomains []string
	Apps          []App         // the first one is the default for registrations
	RingTimeout   time.Duration // how long a call rings
	StaleAfter    time.Duration // a propose delayed longer never rings
	Grace         time.Duration // how long an ended call stays for late events
	PublishHold   time.Duration // how long a publish waits for a propose before it is a message (0: no wait)
	// PublishWindow is how long after a call started (or before) a publish
	// belongs to it: only then can the call have caused it.
	PublishWindow time.Duration
	WakeOnPublish bool
	MaxDevices    int           // per account
	PresenceTTL   time.Duration // how long a presence is believed without news
	DeviceTTL     time.Duration // a device expires this long after its last registration
	TimerInterval time.Duration // how often due timers are polled
	// Lease is how long a process holds a wake it has not delivered before
	// another may take it over (the process died).
	Lease time.Duration
	// FailOpenAfter is how long a call waits for Redis before it rings the
	// devices this process knows (fail open).
	FailOpenAfter time.Duration

	// Limits on new calls (0 and false: no limit). They never apply to the
	// end of a call, or to a call that rings already.
	OnePerCaller    bool // a caller has one call ringing per callee at most: a newer one is refused
	MaxRinging      int  // calls ringing at once for one callee
	MaxRemoteDomain int  // of those, from one remote domain
	PairPerMinute   int  // new calls a minute from one caller to one callee
	CallerPerMinute int  // new calls a minute from one caller, to anyone
	DomainPerMinute int  // new calls a minute from one remote domain, to anyone
	// RingFrom is RingFromAnyone or RingFromContacts; with contacts, a
	// stranger's call wakes nothing and becomes a "missed call" alert, at
	// most once per caller and StrangerWindow.
	RingFrom       string
	StrangerWindow time.Duration

	// Now is the clock; nil means time.Now in Go and Redis's own clock in
	// the scripts (what production uses).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	defDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	defDur(&c.RingTimeout, d.RingTimeout)
	defDur(&c.StaleAfter, d.StaleAfter)
	defDur(&c.Grace, d.Grace)
	defDur(&c.PublishWindow, d.PublishWindow)
	defDur(&c.PresenceTTL, d.PresenceTTL)
	defDur(&c.DeviceTTL, d.DeviceTTL)
	defDur(&c.TimerInterval, d.TimerInterval)
	defDur(&c.Lease, d.Lease)
	defDur(&c.FailOpenAfter, d.FailOpenAfter)
	defDur(&c.StrangerWindow, d.StrangerWindow)
	if c.PublishHold < 0 {
		c.PublishHold = 0
	}
	if c.MaxDevices <= 0 {
		c.MaxDevices = d.MaxDevices
	}
	if c.RingFrom == "" {
		c.RingFrom = d.RingFrom
	}
	// A publish cannot belong to a call longer than it rings, and a lease
	// is no use if it comes due after the call: half the ring time leaves
	// room for the takeover's push.
	c.PublishWindow = min(c.PublishWindow, c.RingTimeout)
	c.Lease = min(c.Lease, c.RingTimeout/2)
}

// LeaseRenewal is how often a push in flight for a wake must ask
// Feedback.WakeWanted (which renews the wake's lease) so that no other
// process takes over a push that is only slow: half the lease, as the
// service will use it.
func (c Config) LeaseRenewal() time.Duration {
	c.setDefaults()
	return c.Lease / 2
}

// Service applies jinglepush's call rules (DESIGN.md section 4) to the
// events the component hands it, keeping the state in Redis through a
// Store and handing its decisions to a Notifier. Its methods live by
// concern: calls (call.go), limits, presence, publishes, registrations,
// timers and the fail-open path.
type Service struct {
	store   *Store
	notify  Notifier
	rosters Rosters
	cfg     Config
	served  map[string]bool
	log     *slog.Logger
	m       *serviceMetrics
	now     func() time.Time

	// clockOffset is Redis's clock minus this process's, as of the last
	// timer poll (ns): it only decides when to ask Redis.
	clockOffset atomic.Int64

	outage   outage        // Redis unreachable: what rang from memory, to record later
	presence presenceRetry // presences Redis did not take, to write once it answers
	refusals onceEvery     // refusals already logged, per caller and reason
	parked   onceEvery     // parked timers already logged
	sweep    struct {
		mu            sync.Mutex
		bucket, shard int
		cursor        string
	}
}

// NewService returns a Service that decides with store and tells notify;
// rosters may be nil (then every caller counts as a contact). Call
// RunTimers to fire ring timeouts, held message alerts and wake leases.
func NewService(store *Store, notify Notifier, rosters Rosters, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Service {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	served := make(map[string]bool, len(cfg.ServedDomains))
	for _, d := range cfg.ServedDomains {
		served[strings.ToLower(d)] = true
	}
	s := &Service{
		store:   store,
		notify:  notify,
		rosters: rosters,
		cfg:     cfg,
		served:  served,
		log:     log.With("component", "sessions"),
		m:       newServiceMetrics(reg),
		now:     time.Now,
	}
	s.sweep.cursor = "0"
	if cfg.Now != nil {
		s.now = cfg.Now
		store.useClock(cfg.Now)
	}
	store.setPolicy(policy{
		ring: cfg.RingTimeout, grace: cfg.Grace, stale: cfg.StaleAfter, hold: cfg.PublishHold,
		window: cfg.PublishWindow, lease: cfg.Lease, deviceTTL: cfg.DeviceTTL,
		wakeOnPublish: cfg.WakeOnPublish,
		onePerCaller:  cfg.OnePerCaller, maxRinging: cfg.MaxRinging, maxPerDomain: cfg.MaxRemoteDomain, pairPerMinute: cfg.PairPerMinute,
		callerPerMinute: cfg.CallerPerMinute, domainPerMinute: cfg.DomainPerMinute,
		strangerWindow: cfg.StrangerWindow,
	})
	store.settled = func(op string, err error) {
		if err != nil {
			s.m.settled.WithLabelValues("error").Inc()
			return
		}
		s.m.settled.WithLabelValues(op).Inc()
	}
	s.refusals.init(time.Minute)
	s.parked.init(time.Hour)
	return s
}

// Ready reports whether Redis answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Durability returns what may make Redis lose jinglepush's data
// (Store.Durability).
func (s *Service) Durability(ctx context.Context) ([]string, error) { return s.store.Durability(ctx) }

// NodeAccount returns the account a XEP-0357 node of this service names
// ("" for a node that is not one of ours), so that a publish can be
// handled in order with the account's other events.
func NodeAccount(node string) string {
	account, _, ok := parseNode(node)
	if !ok {
		return ""
	}
	return account
}

// Serves reports whether j's domain is one of the served domains.
func (s *Service) Serves(j jid.JID) bool { return s.served[j.Domainpart()] }

// notified counts and logs a decision the Notifier did not take, and
// passes its error on.
func (s *Service) notified(err error, decision, account, deviceID, callID string) error {
	if err != nil {
		s.m.pushErrors.WithLabelValues(decision).Inc()
		s.log.Error("push not queued", "error", err, "decision", decision, "call_id", callID, "account", account, "device", deviceID)
	}
	return err
}

// onceEvery remembers keys for a while: a log line per key and window
// rather than per event.
type onceEvery struct {
	mu     sync.Mutex
	window time.Duration
	seen   map[string]time.Time
}

func (o *onceEvery) init(window time.Duration) {
	o.window, o.seen = window, make(map[string]time.Time)
}

// first reports whether key was not seen in the window, and remembers it.
func (o *onceEvery) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if len(o.seen) > 10_000 {
		for k, t := range o.seen {
			if now.Sub(t) > o.window {
				delete(o.seen, k)
			}
		}
	}
	if t, ok := o.seen[key]; ok && now.Sub(t) < o.window {
		return false
	}
	o.seen[key] = now
	return true
}
