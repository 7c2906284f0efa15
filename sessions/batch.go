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
//
// A request that can wait (doLater: the record of a push, which no one
// waits on) does not start a pipeline of its own at once: it rides with
// the next request that cannot wait, or goes after lingerFor, so that at
// any rate a call costs Redis about one round trip, not two.
type batcher struct {
	rdb   redis.UniversalClient
	reqs  chan *batchReq
	later chan *batchReq
	max   int
}

// lingerFor is how long a request that can wait waits for company.
const lingerFor = 2 * time.Millisecond

// batchTimeout bounds one pipeline, whatever the callers' contexts say.
const batchTimeout = 5 * time.Second

// scriptCall is one script of a request, and its answer; or, with plain
// set, commands that need no script, whose first error is the answer.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	plain  func(ctx context.Context, p redis.Pipeliner) []redis.Cmder
	res    []any
	err    error
}

type batchReq struct {
	calls []*scriptCall
	done  chan struct{}
}

func newBatcher(rdb redis.UniversalClient, max int) *batcher {
	b := &batcher{rdb: rdb, reqs: make(chan *batchReq, 4*max), later: make(chan *batchReq, 4*max), max: max}
	// Two loops: while one waits for Redis, the other gathers the next batch.
	go b.loop()
	go b.loop()
	return b
}

// do runs calls in the next batch and returns once they have all run (or
// failed). Scripts Redis lost (a restart) are sent again by source.
func (b *batcher) do(ctx context.Context, calls ...*scriptCall) {
	b.send(ctx, b.reqs, calls)
}

// doLater is do for calls that can wait lingerFor for others to share
// their pipeline.
func (b *batcher) doLater(ctx context.Context, calls ...*scriptCall) {
	b.send(ctx, b.later, calls)
}

func (b *batcher) send(ctx context.Context, queue chan *batchReq, calls []*scriptCall) {
	r := &batchReq{calls: calls, done: make(chan struct{})}
	select {
	case queue <- r:
		<-r.done
	case <-ctx.Done():
		// Not queued: nothing ran.
		for _, c := range calls {
			c.err = ctx.Err()
		}
		return
	}
	for _, c := range calls {
		if c.script != nil && isNoScript(c.err) {
			c.res, c.err = c.script.Run(context.WithoutCancel(ctx), b.rdb, c.keys, c.args...).Slice()
		}
	}
}

func (b *batcher) loop() {
	batch := make([]*batchReq, 0, b.max)
	linger := time.NewTimer(lingerFor)
	linger.Stop()
	for {
		batch = batch[:0]
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case r := <-b.later:
			// Wait a little for a request that cannot wait, or for more.
			batch = append(batch, r)
			linger.Reset(lingerFor)
		wait:
			for len(batch) < b.max {
				select {
				case r := <-b.reqs:
					batch = append(batch, r)
					break wait
				case r := <-b.later:
					batch = append(batch, r)
				case <-linger.C:
					break wait
				}
			}
			linger.Stop()
		}
	gather:
		for len(batch) < b.max {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			case r := <-b.later:
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
	scripts := make([]*redis.Cmd, 0, len(batch))
	var plain [][]redis.Cmder
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range batch {
			for _, c := range r.calls {
				if c.plain != nil {
					plain = append(plain, c.plain(ctx, p))
				} else {
					scripts = append(scripts, c.script.EvalSha(ctx, p, c.keys, c.args...))
				}
			}
		}
		return nil
	})
	i, j := 0, 0
	for _, r := range batch {
		for _, c := range r.calls {
			if c.plain != nil {
				for _, cmd := range plain[j] {
					if err := cmd.Err(); err != nil && err != redis.Nil && c.err == nil {
						c.err = err
					}
				}
				j++
				continue
			}
			c.res, c.err = scripts[i].Slice()
			i++
		}
		close(r.done)
	}
}
