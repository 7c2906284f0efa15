package sessions

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// proposeBatcher sends the proposes of concurrent workers to Redis in
// shared pipelines: under load one write and one read carry many calls
// instead of one each, and with a single call in flight it costs nothing
// but a goroutine hand-off. Each propose still runs its own script, so
// atomicity per call is unchanged.
type proposeBatcher struct {
	rdb  redis.UniversalClient
	reqs chan *proposeReq
	max  int
}

type proposeReq struct {
	ctx    context.Context
	keys   []string
	args   []any
	timer  redis.Z
	timers string // the timers key
	res    []any
	err    error // the script's
	tErr   error // the timer's
	done   chan struct{}
}

func newProposeBatcher(rdb redis.UniversalClient, max int) *proposeBatcher {
	b := &proposeBatcher{rdb: rdb, reqs: make(chan *proposeReq, 4*max), max: max}
	// Two loops: while one waits for Redis, the other gathers the next batch.
	go b.loop()
	go b.loop()
	return b
}

// do runs one propose (script and timer) in the next batch.
func (b *proposeBatcher) do(r *proposeReq) {
	r.done = make(chan struct{})
	select {
	case b.reqs <- r:
	case <-r.ctx.Done():
		r.err = r.ctx.Err()
		return
	}
	select {
	case <-r.done:
	case <-r.ctx.Done():
		// The batch will still complete it; the caller stops waiting.
		r.err = r.ctx.Err()
	}
}

func (b *proposeBatcher) loop() {
	batch := make([]*proposeReq, 0, b.max)
	for r := range b.reqs {
		batch = append(batch[:0], r)
	gather:
		for len(batch) < b.max {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		b.exec(batch)
	}
}

func (b *proposeBatcher) exec(batch []*proposeReq) {
	ctx := batch[0].ctx
	scripts := make([]*redis.Cmd, len(batch))
	timers := make([]*redis.IntCmd, len(batch))
	_, _ = b.rdb.Pipelined(context.WithoutCancel(ctx), func(p redis.Pipeliner) error {
		for i, r := range batch {
			scripts[i] = proposeScript.EvalSha(ctx, p, r.keys, r.args...)
			timers[i] = p.ZAddNX(ctx, r.timers, r.timer)
		}
		return nil
	})
	for i, r := range batch {
		r.res, r.err = scripts[i].Slice()
		r.tErr = timers[i].Err()
		close(r.done)
	}
}
