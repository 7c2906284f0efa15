package pushnotify

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	pushes    *prometheus.CounterVec   // kind, result: one per push, at its end
	requests  *prometheus.HistogramVec // kind, result: one per APNs request
	retries   *prometheus.CounterVec   // kind, reason
	dropped   *prometheus.CounterVec   // kind, reason: never sent (queue full, deadline, shutdown)
	removed   *prometheus.CounterVec   // reason: dead tokens handed back
	queued    prometheus.GaugeFunc
	unhealthy *prometheus.GaugeVec // bundle_id, environment
}

func newMetrics(reg prometheus.Registerer, queueLen func() float64) *metrics {
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "apns", Name: "pushes_total",
			Help: "Pushes that reached a final result, by kind and result (success, an APNs reason, or why it was given up).",
		}, []string{"kind", "result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "jinglepush", Subsystem: "apns", Name: "request_duration_seconds",
			Help:    "Time of each APNs request, by kind and result.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "apns", Name: "retries_total",
			Help: "APNs requests retried, by kind and the reason of the failed attempt.",
		}, []string{"kind", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "apns", Name: "dropped_total",
			Help: "Pushes never sent, by kind and reason (queue_full, expired, shutdown, unknown_app).",
		}, []string{"kind", "reason"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "apns", Name: "tokens_removed_total",
			Help: "Device tokens removed because APNs called them dead, by reason.",
		}, []string{"reason"}),
		unhealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "jinglepush", Subsystem: "apns", Name: "app_unhealthy",
			Help: "1 while an app's last APNs answer was an operator error (credentials, topic).",
		}, []string{"bundle_id", "environment"}),
	}
	m.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "jinglepush", Subsystem: "apns", Name: "queue_length",
		Help: "Pushes waiting for a sender.",
	}, queueLen)
	if reg != nil {
		reg.MustRegister(m.pushes, m.requests, m.retries, m.dropped, m.removed, m.queued, m.unhealthy)
	}
	return m
}
