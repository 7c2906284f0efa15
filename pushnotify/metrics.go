package pushnotify

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Sender's Prometheus series. Labels are bounded: kind has
// three values, result and reason come from a fixed list (Apple's reasons
// and a few of ours), bundle_id and environment from the configuration.
type metrics struct {
	pushes         *prometheus.CounterVec   // kind, result: one per push, at its end
	requests       *prometheus.HistogramVec // kind, result: one per APNs request
	retries        *prometheus.CounterVec   // kind, reason
	dropped        *prometheus.CounterVec   // kind, reason: never sent (queue full, deadline, shutdown)
	removed        *prometheus.CounterVec   // reason: dead tokens removed
	kept           prometheus.Counter       // dead-token answers older than the token's registration
	removeFailures prometheus.Counter
	unhealthy      *prometheus.GaugeVec   // bundle_id, environment, topic
	certExpiry     *prometheus.GaugeVec   // bundle_id
	credentials    *prometheus.GaugeVec   // bundle_id, auth, key_id, serial: what each app signs in with
	lastSuccess    *prometheus.GaugeVec   // bundle_id, kind
	appRequests    *prometheus.CounterVec // bundle_id, environment, kind, result: APNs answers per app
	skipped        *prometheus.CounterVec // decision, reason: decisions no push can carry
}

// gauges are read when the registry is scraped.
type gauges struct {
	queued, retrying, inflight, unfinished func() float64
}

func newMetrics(reg prometheus.Registerer, g gauges) *metrics {
	const ns, sub = "jinglepush", "apns"
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pushes_total",
			Help: "Pushes that reached a final result, by kind and result: success, an APNs reason, deadline, not_wanted (its call ended before a retry), shutdown or dry_run.",
		}, []string{"kind", "result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time of each APNs request, by kind and result (success, an APNs reason, network, timeout, tls, deadline, shutdown).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "APNs requests retried after a backoff, by kind and the result of the failed attempt.",
		}, []string{"kind", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "dropped_total",
			Help: "Pushes never sent to APNs, by kind and reason (queue_full, closed, unknown_app, invalid, payload_too_large, expired, shutdown).",
		}, []string{"kind", "reason"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "tokens_removed_total",
			Help: "Device tokens removed because APNs called them dead, by reason.",
		}, []string{"reason"}),
		kept: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "tokens_kept_total",
			Help: "Dead-token answers that removed nothing: the device registered the token again after APNs found it invalid, or no longer holds it.",
		}),
		removeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "token_removal_failures_total",
			Help: "Dead device tokens that could not be removed.",
		}),
		unhealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "app_unhealthy",
			Help: "1 while the last APNs answer for an app's topic in an environment was an operator error (credentials, topic, TLS).",
		}, []string{"bundle_id", "environment", "topic"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "certificate_expiry_timestamp_seconds",
			Help: "When the client certificate of an app with certificate auth expires (unix seconds); absent for token auth, whose keys do not expire.",
		}, []string{"bundle_id"}),
		credentials: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "credentials_info",
			Help: "1 for the credentials each app pushes with: auth (token, certificate, none in dry runs), the signing key's key_id or the certificate's serial. A reload that rotates them changes the labels.",
		}, []string{"bundle_id", "auth", "key_id", "serial"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "last_success_timestamp_seconds",
			Help: "When APNs last accepted a push of the app, by kind (unix seconds).",
		}, []string{"bundle_id", "kind"}),
		appRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "APNs requests by app, environment, kind and result (success, an APNs reason, network, timeout, tls, deadline, shutdown).",
		}, []string{"bundle_id", "environment", "kind", "result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "skipped_total",
			Help: "Decisions that no APNs push can carry, by decision (call_end, message) and reason (no_alert_token: the device has only a PushKit token, which may only announce calls).",
		}, []string{"decision", "reason"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.pushes, m.requests, m.retries, m.dropped, m.removed, m.kept, m.removeFailures, m.unhealthy, m.certExpiry, m.skipped,
		m.credentials, m.lastSuccess, m.appRequests,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "queue_length",
			Help: "Pushes waiting for a sender.",
		}, g.queued),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "retry_queue_length",
			Help: "Pushes waiting for their next attempt after a failed one.",
		}, g.retrying),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "inflight_requests",
			Help: "APNs requests waiting for an answer.",
		}, g.inflight),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "unfinished_pushes",
			Help: "Pushes accepted and not yet at a final result: queued, being sent or waiting for a retry. 0 means the sender is idle.",
		}, g.unfinished),
	)
	return m
}
