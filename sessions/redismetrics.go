package sessions

import (
	"context"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// InstrumentRedis counts the round trips jinglepush makes to Redis (one per
// command, one per pipeline, whatever it holds) and times them, so
// operators and the load harness see what a call costs.
func InstrumentRedis(rdb redis.UniversalClient, reg prometheus.Registerer) {
	h := &redisHook{
		trips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "jinglepush", Subsystem: "redis", Name: "roundtrips_total",
			Help: "Round trips to Redis, by kind (command, pipeline) and result (ok, error).",
		}, []string{"kind", "result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "jinglepush", Subsystem: "redis", Name: "roundtrip_duration_seconds",
			Help:    "Time of each round trip to Redis.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
	h.cmdOK = h.trips.WithLabelValues("command", "ok")
	h.cmdErr = h.trips.WithLabelValues("command", "error")
	h.pipeOK = h.trips.WithLabelValues("pipeline", "ok")
	h.pipeErr = h.trips.WithLabelValues("pipeline", "error")
	if reg != nil {
		reg.MustRegister(h.trips, h.seconds)
	}
	rdb.AddHook(h)
}

type redisHook struct {
	trips                          *prometheus.CounterVec
	seconds                        prometheus.Histogram
	cmdOK, cmdErr, pipeOK, pipeErr prometheus.Counter
}

func (h *redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.seconds.Observe(time.Since(start).Seconds())
		if err != nil && err != redis.Nil {
			h.cmdErr.Inc()
		} else {
			h.cmdOK.Inc()
		}
		return err
	}
}

func (h *redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.seconds.Observe(time.Since(start).Seconds())
		if err != nil && err != redis.Nil {
			h.pipeErr.Inc()
		} else {
			h.pipeOK.Inc()
		}
		return err
	}
}
