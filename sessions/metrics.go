package sessions

import "github.com/prometheus/client_golang/prometheus"

type serviceMetrics struct {
	calls         *prometheus.CounterVec // action, outcome
	wakes         *prometheus.CounterVec // kind: voip | alert
	publishes     *prometheus.CounterVec // outcome
	messages      *prometheus.CounterVec // outcome of held message alerts
	registrations *prometheus.CounterVec // op
	pushErrors    *prometheus.CounterVec // decision: decisions the notifier did not take
	refused       *prometheus.CounterVec // reason
	failOpen      prometheus.Counter
	takeovers     prometheus.Counter
	timersParked  prometheus.Counter
	timerErrors   *prometheus.CounterVec // kind
	presenceLost  prometheus.Counter
	rosterErrors  prometheus.Counter
	settled       *prometheus.CounterVec   // outcome
	pushToRinging *prometheus.HistogramVec // bundle_id
}

func newServiceMetrics(reg prometheus.Registerer) *serviceMetrics {
	m := &serviceMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "events_total",
			Help: "Call signals handled, by action (propose, retract, proceed, ..., timeout) and outcome (created, duplicate, stale, answered, missed, foreign, ...).",
		}, []string{"action", "outcome"}),
		wakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "wakes_total",
			Help: "Devices woken for a ringing call, by push kind (voip, alert) and the condition that woke them (presence, undeliverable, publish, fail_open).",
		}, []string{"kind", "why"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "push", Name: "publishes_total",
			Help: "XEP-0357 publishes, by outcome (call, hold, message, empty, unknown_node, forbidden, bad_secret, gone).",
		}, []string{"outcome"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "push", Name: "held_messages_total",
			Help: "Held message alerts when due, by outcome (message: sent, call: a call claimed the publish, none).",
		}, []string{"outcome"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "devices", Name: "registrations_total",
			Help: "Successful register and unregister commands.",
		}, []string{"op"}),
		pushErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "push_errors_total",
			Help: "Decisions the push sender refused (queue full, shutdown), by decision (wake, call_end, message).",
		}, []string{"decision"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "refused_total",
			Help: "New calls a limit did not let ring, by reason (stranger, pair_ringing, callee_busy, domain_busy, pair_rate, caller_budget, domain_budget).",
		}, []string{"reason"}),
		failOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "fail_open_total",
			Help: "Proposes rung from this process's memory because Redis did not answer.",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "wake_takeovers_total",
			Help: "Wakes pushed again because the process that held them did not deliver them in time (it died).",
		}),
		timersParked: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "timers", Name: "parked_total",
			Help: "Timers that failed too often and were parked (or could not be read): they never fire.",
		}),
		timerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "timers", Name: "errors_total",
			Help: "Timers whose script failed, by kind (c: ring timeout, m: held message, w: wake lease); each comes back later.",
		}, []string{"kind"}),
		presenceLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "presence", Name: "lost_total",
			Help: "Presences that Redis did not take and that could not be kept for later.",
		}),
		rosterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "roster_errors_total",
			Help: "Rosters that could not be read for calls.ring_from = \"contacts\" (the call rang).",
		}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "wakes_settled_total",
			Help: "Wakes whose end was recorded in Redis, by outcome (delivered: APNs took the push; failed: it will never be sent; error: the record failed, and another process may push the wake again when its lease runs out).",
		}, []string{"outcome"}),
		pushToRinging: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "jinglepush", Subsystem: "calls", Name: "push_to_ringing_seconds",
			Help:    "From a call's first push APNs took to the woken device's <ringing/> (XEP-0353), by app: whether pushes really ring, and how fast.",
			Buckets: []float64{.25, .5, 1, 2, 3, 5, 8, 13, 20, 30, 45},
		}, []string{"bundle_id"}),
	}
	if reg != nil {
		reg.MustRegister(m.settled, m.pushToRinging, m.calls, m.wakes, m.publishes, m.messages, m.registrations, m.pushErrors,
			m.refused, m.failOpen, m.takeovers, m.timersParked, m.timerErrors, m.presenceLost, m.rosterErrors)
	}
	return m
}
