package sessions

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Feedback = (*Store)(nil)

// TokenDead drops a token the push service called dead, and the device
// with it when it has no token left (Feedback). A device that registered
// again after t.InvalidSince keeps its token: Apple counts a token
// registered after that time as valid again.
func (s *Store) TokenDead(ctx context.Context, t DeadToken) (bool, error) {
	raw, err := hex.DecodeString(t.Token)
	if err != nil || len(raw) == 0 {
		return false, fmt.Errorf("sessions: dead token is not hex")
	}
	status, err := s.removeToken(ctx, t.Account, t.DeviceID, string(raw), t.InvalidSince)
	if err != nil {
		return false, err
	}
	return status == statusRemoved || status == statusUpdated, nil
}

// WakeWanted reports whether a wake's push should still go out: its call
// rings and the wake is still k.Attempt's (Feedback). It renews the
// attempt's lease on it.
func (s *Store) WakeWanted(ctx context.Context, k WakeKey) (bool, error) {
	res, err := s.wakeOp(ctx, "wanted", k, "", "")
	if err != nil {
		return false, err
	}
	return num(res, 0) == 1, nil
}

// Pushed records a push attempt in the background (Feedback): a line in
// the call's trace, and for a wake's final attempt, its end.
func (s *Store) Pushed(r PushReport) {
	if r.Call.Account == "" && r.Wake == nil {
		return // a message: no call to trace
	}
	text := fmt.Sprintf("push %s %s %s status=%d latency=%s attempts=%d", r.DeviceID, r.Kind, r.Result, r.Status, r.Latency.Round(time.Microsecond), r.Attempts)
	op, k := "note", WakeKey{Call: r.Call, DeviceID: r.DeviceID}
	if r.Wake != nil {
		k = *r.Wake
		switch {
		case r.Final && r.Delivered():
			op = "delivered"
		case r.Final:
			op = "failed"
		}
	}
	if op == "note" && s.traceTTL <= 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		defer cancel()
		err := s.recordPush(ctx, op, k, r.Kind, text)
		if s.settled != nil && op != "note" {
			s.settled(op, err)
		}
	}()
}

// recordPush is Pushed's write, waited for. It waits for the next call's
// pipeline, or lingerFor.
func (s *Store) recordPush(ctx context.Context, op string, k WakeKey, kind, text string) error {
	c := s.pushedCall(op, k, kind, text)
	s.batch.doLater(ctx, c)
	return c.err
}

// pushedCall is what Pushed writes, for the batcher. A delivered push,
// once for every push a call makes, is plain commands: its wake is marked
// delivered and its lease goes, the line joins the call's trace. Nothing
// there needs a decision made in Redis: a wake another attempt took over
// meanwhile was delivered all the same, and whichever attempt settles
// last leaves it delivered. A failed push (rare) runs settle.lua, which
// gives up the wake only if it is still this attempt's.
func (s *Store) pushedCall(op string, k WakeKey, kind, text string) *scriptCall {
	ref := k.Call.ref()
	if op == "failed" {
		return &scriptCall{script: settleScript,
			keys: []string{s.keys.call(k.Call.Account, ref)},
			args: s.args(s.keys.base(k.Call.Account), k.Call.Account, op, ref, k.DeviceID, k.Attempt, s.traced(text))}
	}
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	base := s.keys.base(k.Call.Account)
	return &scriptCall{plain: func(ctx context.Context, p redis.Pipeliner) []redis.Cmder {
		var cmds []redis.Cmder
		if text != "" && s.traceTTL > 0 {
			// RPUSHX: a trace that is gone (or was never kept) stays gone.
			cmds = append(cmds, p.RPushX(ctx, s.keys.trace(k.Call.Account, ref), strconv.FormatInt(ms(now), 10)+" "+text))
		}
		if op != "delivered" {
			// Attempts that are not the last can be many: the trace
			// keeps its newest 64 lines (prelude.lua's trace).
			return append(cmds, p.LTrim(ctx, s.keys.trace(k.Call.Account, ref), -64, -1))
		}
		call, lease := s.keys.call(k.Call.Account, ref), leaseMember(k.Call.Account, ref, k.DeviceID)
		return append(cmds,
			p.HSet(ctx, call, "w:"+k.DeviceID, kind+":d:"+k.Attempt),
			// The first push the call's devices got, for push-to-ringing times.
			p.HSetNX(ctx, call, "pushed", ms(now)),
			// A call that expired meanwhile is not brought back for good.
			p.PExpire(ctx, call, s.pol.ring+s.pol.grace),
			p.ZRem(ctx, s.keys.timers(base), lease),
			p.HDel(ctx, s.keys.timerClaims(base), lease))
	}}
}

// traced is text for a script's trace argument: "" when calls are not
// traced.
func (s *Store) traced(text string) string {
	if s.traceTTL <= 0 {
		return ""
	}
	return text
}
