package component

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	stanzas struct {
		call, presence, iq, other, ignored prometheus.Counter
	}
	iqs      *prometheus.CounterVec // payload
	dropped  *prometheus.CounterVec // reason
	connects *prometheus.CounterVec // result
}

func newMetrics(reg prometheus.Registerer, queueLen, unfinishedN func() float64, connected func() bool) *metrics {
	m := &metrics{
		iqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "component", Name: "iqs_total",
			Help: "IQ requests received, by payload.",
		}, []string{"payload"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "component", Name: "dropped_total",
			Help: "Stanzas dropped, by reason (malformed, not_call, untrusted_forwarder, foreign_domain, queue_full, oversize, ...).",
		}, []string{"reason"}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "component", Name: "connections_total",
			Help: "Connection attempts to the server's component port, by result (attempt, connected, dial_error, handshake_error, refused, standby: another process holds the connection).",
		}, []string{"result"}),
	}
	stanzas := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "jinglepush", Subsystem: "component", Name: "stanzas_total",
		Help: "Stanzas received, by kind (call, presence, iq, other, ignored: the firehose jinglepush does not act on).",
	}, []string{"kind"})
	m.stanzas.call = stanzas.WithLabelValues("call")
	m.stanzas.presence = stanzas.WithLabelValues("presence")
	m.stanzas.iq = stanzas.WithLabelValues("iq")
	m.stanzas.other = stanzas.WithLabelValues("other")
	m.stanzas.ignored = stanzas.WithLabelValues("ignored")
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "jinglepush", Subsystem: "component", Name: "connected",
		Help: "1 while the component stream is up.",
	}, func() float64 {
		if connected() {
			return 1
		}
		return 0
	})
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "jinglepush", Subsystem: "component", Name: "queue_length",
		Help: "Stanzas waiting for a worker.",
	}, queueLen)
	// 0 means every stanza read so far has been handled.
	unfinished := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "jinglepush", Subsystem: "component", Name: "unfinished_stanzas",
		Help: "Stanzas queued for a worker or being handled.",
	}, unfinishedN)
	if reg != nil {
		reg.MustRegister(stanzas, m.iqs, m.dropped, m.connects, up, queued, unfinished)
	}
	return m
}
