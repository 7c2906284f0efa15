package sessions

import (
	"context"
)

// The limits on new calls (Config: MaxRinging and the others) are kept in
// Redis, so they hold across processes: the per-callee ones inside the
// propose script, the budgets of a caller and of a remote domain in the
// same round trip (store_calls.go). This file is what the Service does
// with a refusal, and the contacts-only choice of RingFrom.

// contactCheck returns refusedStranger when the callee rings only for
// contacts and the caller is not one. A roster that cannot be read lets
// the call ring: the user chose to hear from contacts, not to miss calls
// when the server is slow.
func (s *Service) contactCheck(ctx context.Context, p proposal) string {
	ok, err := s.rosters.Subscribed(ctx, p.account, p.caller)
	if err != nil {
		s.m.rosterErrors.Inc()
		if s.refusals.first("roster\n" + p.account) {
			s.log.Warn("could not read the callee's roster: the call rings", "account", p.account, "caller", p.caller, "error", err)
		}
		return ""
	}
	if ok {
		return ""
	}
	return refusedStranger
}

// refused counts a call a limit refused and logs it once per caller,
// reason and minute. A stranger's refused call still tells the user, once
// per caller and window: a "missed call" alert on the regular token.
func (s *Service) refused(ctx context.Context, p proposal, res proposeResult) {
	s.m.refused.WithLabelValues(res.state).Inc()
	if s.refusals.first(res.state + "\n" + p.caller) {
		s.log.Info("call refused", "reason", res.state, "caller", p.caller, "account", p.account, "call_id", p.id,
			"note", "logged once per caller, reason and minute")
	}
	if res.state != refusedStranger {
		return
	}
	for _, d := range res.devices {
		if d.Token == "" {
			continue
		}
		_ = s.notified(s.notify.CallEnded(ctx, CallEnd{Call: res.call, Device: d, State: EndMissed}), "call_end", p.account, d.ID, p.id)
	}
}
