package sessions

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher sends the scripts of concurrent workers to Redis in shared
// pipelines: under load one write and one read carry many calls instead of
// one each, and with a single call in flight it costs nothing but a
// goroutine hand-off. Each script still runs on its own, so atomicity per
// call is unchanged.
//
// A request handed to the batcher is always carried to its end, and its
// caller always waits for that end: a script that runs in Redis (a
// propose that marks devices woken) must reach the code that pushes what
// it decided. The batch's own deadline (batchTimeout) bounds the wait.
type batcher struct {
	rdb  redis.UniversalClient
	reqs chan *batchReq
	max  int
}

// batchTimeout bounds one pipeline, whatever the callers' contexts say.
const batchTimeout = 5 * time.Second

// scriptCall is one script of a request, and its answer.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	res    []any
	err    error
}

type batchReq struct {
	calls []*scriptCall
	done  chan struct{}
}

func newBatcher(rdb redis.UniversalClient, max int) *batcher {
	b := &batcher{rdb: rdb, reqs: make(chan *batchReq, 4*max), max: max}
	// Two loops: while one waits for Redis, the other gathers the next batch.
	go b.loop()
	go b.loop()
	return b
}

// do runs calls in the next batch and returns once they have all run (or
// failed). Scripts Redis lost (a restart) are sent again by source.
func (b *batcher) do(ctx context.Context, calls ...*scriptCall) {
	r := &batchReq{calls: calls, done: make(chan struct{})}
	select {
	case b.reqs <- r:
		<-r.done
	case <-ctx.Done():
		// Not queued: nothing ran.
		for _, c := range calls {
			c.err = ctx.Err()
		}
		return
	}
	for _, c := range calls {
		if isNoScript(c.err) {
			c.res, c.err = c.script.Run(context.WithoutCancel(ctx), b.rdb, c.keys, c.args...).Slice()
		}
	}
}

func (b *batcher) loop() {
	batch := make([]*batchReq, 0, b.max)
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

func (b *batcher) exec(batch []*batchReq) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	cmds := make([]*redis.Cmd, 0, len(batch))
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range batch {
			for _, c := range r.calls {
				cmds = append(cmds, c.script.EvalSha(ctx, p, c.keys, c.args...))
			}
		}
		return nil
	})
	i := 0
	for _, r := range batch {
		for _, c := range r.calls {
			c.res, c.err = cmds[i].Slice()
			i++
		}
		close(r.done)
	}
}
