package sessions

import (
	"context"
	"errors"
	"log/slog"
	"strings"
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

// Config tunes a Service. Zero durations take the defaults of
// DefaultConfig.
type Config struct {
	ServedDomains []string
	Apps          []App         // the first one is the default for registrations
	RingTimeout   time.Duration // how long a call rings
	StaleAfter    time.Duration // a propose delayed longer never rings
	Grace         time.Duration // how long an ended call stays for late events
	PublishHold   time.Duration // how long a publish waits for a propose before it is a message
	WakeOnPublish bool
	MaxDevices    int           // per account
	PresenceTTL   time.Duration // how long a presence is believed without news
	DeviceTTL     time.Duration // refreshed by each registration
	TimerInterval time.Duration // how often due timers are polled
	// Now is the clock; nil means time.Now.
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
	defDur(&c.PresenceTTL, d.PresenceTTL)
	defDur(&c.DeviceTTL, d.DeviceTTL)
	defDur(&c.TimerInterval, d.TimerInterval)
	if c.PublishHold < 0 {
		c.PublishHold = 0
	}
	if c.MaxDevices <= 0 {
		c.MaxDevices = d.MaxDevices
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service applies jinglepush's call rules (DESIGN.md section 4) to the
// events the component hands it, keeping the state in Redis through a
// Store and handing its decisions to a Notifier. Its methods live by
// concern: calls (call.go), presence, publishes, registrations, timers and
// the fail-open path.
type Service struct {
	store  *Store
	notify Notifier
	cfg    Config
	t      timing
	served map[string]bool
	log    *slog.Logger
	m      *serviceMetrics
}

// NewService returns a Service that decides with store and tells notify;
// call RunTimers to fire ring timeouts and held message alerts.
func NewService(store *Store, notify Notifier, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Service {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	served := make(map[string]bool, len(cfg.ServedDomains))
	for _, d := range cfg.ServedDomains {
		served[strings.ToLower(d)] = true
	}
	return &Service{
		store:  store,
		notify: notify,
		cfg:    cfg,
		t:      timing{ring: cfg.RingTimeout, grace: cfg.Grace, stale: cfg.StaleAfter, hold: cfg.PublishHold, wakeOnPublish: cfg.WakeOnPublish},
		served: served,
		log:    log.With("component", "sessions"),
		m:      newServiceMetrics(reg),
	}
}

// Ready reports whether Redis answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

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
