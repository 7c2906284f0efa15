package sessions

import (
	"context"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
)

// Call handles one call signal forwarded by the server.
func (s *Service) Call(ctx context.Context, ev jingle.CallEvent) error {
	switch ev.Action {
	case jingle.ActionPropose:
		return s.propose(ctx, ev)
	case jingle.ActionRetract:
		return s.callerEnds(ctx, ev)
	case jingle.ActionFinish:
		return s.finish(ctx, ev)
	case jingle.ActionProceed, jingle.ActionAccept:
		return s.calleeEnds(ctx, ev, EndAnswered)
	case jingle.ActionReject:
		return s.calleeEnds(ctx, ev, EndDeclined)
	}
	s.m.calls.WithLabelValues(string(ev.Action), "ignored").Inc()
	return nil
}

func (s *Service) propose(ctx context.Context, ev jingle.CallEvent) error {
	if !s.Serves(ev.To) {
		s.m.calls.WithLabelValues("propose", "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.To.Bare())
	}
	p := proposal{
		account:       ev.To.Bare().String(),
		caller:        ev.From.Bare().String(),
		id:            ev.ID,
		from:          ev.From.String(),
		media:         ev.Media,
		delay:         ev.Delay,
		undeliverable: ev.Undeliverable(),
	}
	if p.account == p.caller {
		s.m.calls.WithLabelValues("propose", "self").Inc()
		return nil
	}
	now := s.cfg.Now()
	res, err := s.store.propose(ctx, p, now, s.t)
	if err != nil {
		return s.failOpen(ctx, p, now, err)
	}
	outcome := res.status
	if outcome == statusRinging {
		outcome = "duplicate"
	}
	switch res.status {
	case statusStale:
		s.log.Info("stale propose dropped", "call_id", p.id, "caller", p.caller, "account", p.account, "delay", ev.Delay)
	case statusEnded:
		s.log.Debug("propose for an ended call", "call_id", p.id, "caller", p.caller, "account", p.account, "state", res.state)
	}
	for _, w := range res.wakes {
		s.wake(ctx, Wake{Call: res.call, Device: w.device, Kind: w.kind, Why: w.why})
	}
	// Counted last: once the count moves, the pushes are queued.
	s.m.calls.WithLabelValues("propose", outcome).Inc()
	return nil
}

// wake hands a wake decision to the Notifier. When nothing will carry it,
// the device is released so that a later copy of the propose tries again.
func (s *Service) wake(ctx context.Context, w Wake) {
	s.m.wakes.WithLabelValues(string(w.Kind), string(w.Why)).Inc()
	s.log.Info("waking device", "call_id", w.Call.ID, "caller", w.Call.Caller, "account", w.Call.Account, "device", w.Device.ID, "kind", w.Kind, "why", w.Why)
	if s.notified(s.notify.Wake(ctx, w), "wake", w.Call.Account, w.Device.ID, w.Call.ID) == nil || w.Why == WhyFailOpen {
		return
	}
	if err := s.store.unwake(ctx, w.Call.Account, w.Call.Key().ref(), w.Device.ID); err != nil {
		s.log.Error("could not release a device for a later wake", "error", err)
	}
}

func (s *Service) callerEnds(ctx context.Context, ev jingle.CallEvent) error {
	if !s.Serves(ev.To) {
		s.m.calls.WithLabelValues(string(ev.Action), "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.To.Bare())
	}
	_, err := s.end(ctx, string(ev.Action), ev.To.Bare().String(), callRef(ev.From.Bare().String(), ev.ID), EndCancelled, "")
	return err
}

// finish comes from either side: from the caller it ends a ringing call as
// cancelled; from the callee as answered (or declined, by its reason).
func (s *Service) finish(ctx context.Context, ev jingle.CallEvent) error {
	if s.Serves(ev.To) && ev.To.Bare().String() != ev.From.Bare().String() {
		status, err := s.end(ctx, "finish", ev.To.Bare().String(), callRef(ev.From.Bare().String(), ev.ID), EndCancelled, "")
		if err != nil || status != statusUnknown {
			return err
		}
	}
	state := EndAnswered
	switch ev.Reason {
	case "decline", "busy":
		state = EndDeclined
	}
	return s.calleeEnds(ctx, ev, state)
}

// calleeEnds handles a signal from one of the callee's own resources: the
// call was answered or declined there, so the other woken devices stop
// ringing.
func (s *Service) calleeEnds(ctx context.Context, ev jingle.CallEvent, state EndState) error {
	action := string(ev.Action)
	if !s.Serves(ev.From) {
		s.m.calls.WithLabelValues(action, "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.From.Bare())
	}
	account := ev.From.Bare().String()
	ref := callRef(ev.To.Bare().String(), ev.ID)
	if ev.To.Bare().String() == account || ev.To.Equal(jid.JID{}) {
		// Sent to the callee's own bare JID (XEP-0353 accept): the caller is
		// not named, the id finds the call.
		var err error
		if ref, err = s.store.refByID(ctx, account, ev.ID, s.cfg.Now()); err != nil {
			return err
		}
		if ref == "" {
			s.m.calls.WithLabelValues(action, statusUnknown).Inc()
			return nil
		}
	}
	_, err := s.end(ctx, action, account, ref, state, ev.From.Resourcepart())
	return err
}

// end moves a call to state and tells its woken devices, but the one on
// resource leaveOut (which ended it).
func (s *Service) end(ctx context.Context, action, account, ref string, state EndState, leaveOut string) (string, error) {
	res, err := s.store.end(ctx, account, ref, string(state), leaveOut, false, s.cfg.Now())
	if err != nil {
		s.m.calls.WithLabelValues(action, "redis_error").Inc()
		return "", err
	}
	outcome := res.status
	if outcome == statusEndedNow {
		outcome = string(state)
		s.log.Info("call ended", "call_id", res.call.ID, "caller", res.call.Caller, "account", account, "state", state, "woken", len(res.woken))
		s.tellEnd(ctx, res.call, res.woken, state)
	}
	s.m.calls.WithLabelValues(action, outcome).Inc()
	return res.status, nil
}

// tellEnd hands the end of a call to the Notifier for each woken device.
func (s *Service) tellEnd(ctx context.Context, c Call, woken []wake, state EndState) {
	for _, w := range woken {
		_ = s.notified(s.notify.CallEnded(ctx, CallEnd{Call: c, Device: w.device, State: state}), "call_end", c.Account, w.device.ID, c.ID)
	}
}
