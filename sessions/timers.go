package sessions

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timers live in their account's bucket (keys.go), scored by when they are
// due in Redis's clock. Every process polls every bucket; the claim script
// hands each due timer to one process, and the script that acts on a timer
// removes it. A timer whose process died comes back once its claim runs
// out; one that keeps failing is parked and logged, never left to block
// the others.
const (
	claimFor     = 10 * time.Second // how long a claimed timer is the claimer's
	maxClaims    = 5                // claims without success before a timer is parked
	claimBatch   = 128              // timers claimed from a bucket at once
	sweepEvery   = 10 * time.Second
	sweepBuckets = buckets * deviceShards
)

// RunTimers fires due ring timeouts, held message alerts and wake leases
// until ctx ends, writes the presences Redis missed once it answers, and
// sweeps aged devices. Every process runs it.
func (s *Service) RunTimers(ctx context.Context) {
	t := time.NewTicker(s.cfg.TimerInterval)
	defer t.Stop()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.FireTimers(ctx)
			s.presence.flush(ctx, s)
		case <-sweep.C:
			s.sweepStep(ctx)
		}
	}
}

// FireTimers acts on the timers due now, in every bucket.
func (s *Service) FireTimers(ctx context.Context) {
	bases := s.store.keys.bucketBases()
	// One cheap read of every bucket first, in one round trip, with Redis's
	// clock as of the last read; only buckets with something due are
	// claimed from, and the claim script decides by Redis's clock of now.
	var due string
	if s.cfg.Now != nil {
		due = strconv.FormatInt(ms(s.cfg.Now()), 10)
	} else {
		due = strconv.FormatInt(ms(time.Now().Add(time.Duration(s.clockOffset.Load()))), 10)
	}
	var clock *redis.TimeCmd
	cmds := make([]*redis.StringSliceCmd, len(bases))
	_, err := s.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if s.cfg.Now == nil {
			clock = p.Time(ctx)
		}
		for i, b := range bases {
			cmds[i] = p.ZRangeByScore(ctx, s.store.keys.timers(b), &redis.ZRangeBy{Min: "-inf", Max: due, Count: 1})
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		// One node of a cluster down (a failover) must not hold up the
		// buckets of the others: those that answered go on.
		s.log.Warn("timers", "error", err)
	}
	if clock != nil {
		if t, err := clock.Result(); err == nil {
			s.clockOffset.Store(int64(time.Until(t)))
		}
	}
	for i, b := range bases {
		if cmds[i].Err() != nil || len(cmds[i].Val()) == 0 {
			continue
		}
		timers, err := s.store.claimTimers(ctx, b, claimBatch, claimFor, maxClaims)
		if err != nil {
			s.log.Warn("timers", "error", err)
			continue
		}
		for _, t := range timers {
			s.fireTimer(ctx, b, t)
		}
	}
	if err == nil || err == redis.Nil {
		s.outage.answered(s) // every node answered
	}
}

// fireTimer acts on one claimed timer. An error leaves it claimed: it
// comes back when the claim runs out.
func (s *Service) fireTimer(ctx context.Context, base string, t timer) {
	if t.claims < 0 {
		s.m.timersParked.Inc()
		if s.parked.first(t.member) {
			s.log.Error("a timer failed too often and is parked: it will not fire again", "timer", strings.ReplaceAll(t.member, "\n", " "), "key", s.store.keys.timers(base)+" (parked in "+base+"tp)")
		}
		return
	}
	if t.kind == "" {
		// Not a timer this version knows: nothing can act on it.
		if err := s.store.dropTimer(ctx, base, t.member); err == nil {
			s.m.timersParked.Inc()
		}
		return
	}
	var err error
	switch t.kind {
	case timerCall:
		err = s.ringTimeout(ctx, t)
	case timerMessage:
		err = s.messageDue(ctx, t)
	case timerLease:
		err = s.takeOver(ctx, t)
	}
	if err != nil {
		s.m.timerErrors.WithLabelValues(t.kind).Inc()
		s.log.Warn("timer failed; it comes back later", "kind", t.kind, "account", t.account, "claims", t.claims, "error", err)
	}
}

func (s *Service) ringTimeout(ctx context.Context, t timer) error {
	res, err := s.store.end(ctx, t.account, t.ref, StateMissed, true, "timeout")
	if err != nil {
		return err
	}
	if res.status == statusEndedNow {
		s.log.Info("call missed", "call_id", res.call.ID, "caller", res.call.Caller, "account", t.account, "woken", len(res.woken))
		s.tellEnd(ctx, res.call, res.woken, EndMissed, "")
		s.m.calls.WithLabelValues("timeout", StateMissed).Inc()
	}
	return nil
}

func (s *Service) messageDue(ctx context.Context, t timer) error {
	status, d, held, err := s.store.messageDue(ctx, t.account, t.dev)
	if err != nil {
		return err
	}
	s.m.messages.WithLabelValues(status).Inc()
	if status == statusMessage {
		var m heldMessage
		_ = json.Unmarshal([]byte(held), &m)
		s.sendMessage(ctx, t.account, d, m)
	}
	return nil
}

// takeOver handles a wake lease that came due: the attempt that held the
// wake did not deliver it in time (its process died, or it is stuck). A
// wake still pending on a ringing call is pushed again under a new
// attempt; the old attempt's pushes then stop at their next check.
func (s *Service) takeOver(ctx context.Context, t timer) error {
	caller, id, _ := splitRef(t.ref)
	attempt := newAttempt()
	k := WakeKey{Call: CallKey{Account: t.account, Caller: caller, ID: id}, DeviceID: t.dev}
	res, err := s.store.wakeOp(ctx, "takeover", k, "", attempt)
	if err != nil {
		return err
	}
	if num(res, 0) != 1 {
		return nil
	}
	d, err := decodeDevice(t.account, []byte(str(res, 7)))
	if err != nil {
		return err
	}
	c := Call{
		Account: t.account, Caller: caller, ID: id,
		Created:  time.UnixMilli(num(res, 2)),
		Deadline: time.UnixMilli(num(res, 3)),
		From:     str(res, 4),
		Media:    splitMedia(str(res, 5)),
	}
	s.m.takeovers.Inc()
	s.wake(ctx, Wake{Call: c, Device: d, Kind: WakeKind(str(res, 1)), Why: WhyTakeover, Attempt: attempt})
	return nil
}

// sweepStep sweeps one step of one devices hash for devices that aged
// out; a whole pass over every hash takes a day or so, well inside a
// device's time to live.
func (s *Service) sweepStep(ctx context.Context) {
	s.sweep.mu.Lock()
	defer s.sweep.mu.Unlock()
	next, err := s.store.sweep(ctx, s.sweep.bucket, s.sweep.shard, s.sweep.cursor, s.cfg.DeviceTTL)
	if err != nil {
		return
	}
	s.sweep.cursor = next
	if next == "0" {
		s.sweep.shard++
		if s.sweep.shard == deviceShards {
			s.sweep.shard = 0
			s.sweep.bucket = (s.sweep.bucket + 1) % buckets
		}
	}
}
