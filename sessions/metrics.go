package sessions

import "github.com/prometheus/client_golang/prometheus"

type serviceMetrics struct {
	calls         *prometheus.CounterVec // action, outcome
	wakes         *prometheus.CounterVec // kind: voip | alert
	publishes     *prometheus.CounterVec // outcome
	messages      *prometheus.CounterVec // outcome of held message alerts
	registrations *prometheus.CounterVec // op
	pushErrors    *prometheus.CounterVec // kind: pushes the sender did not take
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
			Help: "Pushes the sender refused (queue full, shutdown), by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.wakes, m.publishes, m.messages, m.registrations, m.pushErrors)
	}
	return m
}
