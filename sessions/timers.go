package sessions

import (
	"context"
	"encoding/json"
	"time"
)

// RunTimers fires due ring timeouts and held message alerts until ctx ends.
// Every process runs it; the scripts make each timer act once.
func (s *Service) RunTimers(ctx context.Context) {
	t := time.NewTicker(s.cfg.TimerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.FireTimers(ctx)
		}
	}
}

// FireTimers acts on the timers due now.
func (s *Service) FireTimers(ctx context.Context) {
	now := s.cfg.Now()
	members, err := s.store.dueTimers(ctx, now, 512)
	if err != nil {
		s.log.Warn("timers", "error", err)
		return
	}
	for _, member := range members {
		if s.fireTimer(ctx, member, now) {
			if err := s.store.doneTimer(ctx, member); err != nil {
				s.log.Warn("timer done", "error", err)
			}
		}
	}
}

// fireTimer reports whether the timer is done with.
func (s *Service) fireTimer(ctx context.Context, member string, now time.Time) bool {
	kind, account, rest, ok := parseTimer(member)
	if !ok {
		return true
	}
	switch kind {
	case timerCall:
		res, err := s.store.end(ctx, account, rest, StateMissed, "", true, now)
		if err != nil {
			s.log.Warn("ring timeout", "error", err)
			return false
		}
		if res.status == statusEarly {
			return false
		}
		if res.status == statusEndedNow {
			s.log.Info("call missed", "call_id", res.call.ID, "caller", res.call.Caller, "account", account, "woken", len(res.woken))
			s.tellEnd(ctx, res.call, res.woken, EndMissed)
			s.m.calls.WithLabelValues("timeout", StateMissed).Inc()
		}
	case timerMessage:
		status, d, pending, err := s.store.messageDue(ctx, account, rest)
		if err != nil {
			s.log.Warn("message alert", "error", err)
			return false
		}
		s.m.messages.WithLabelValues(status).Inc()
		if status == statusMessage {
			var m pendingMessage
			_ = json.Unmarshal([]byte(pending), &m)
			s.sendMessage(ctx, account, d, m)
		}
	}
	return true
}
