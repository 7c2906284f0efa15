package sessions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
)

type arrivalKey struct{}

// WithArrival tells the Service when the stanza behind ctx's work arrived
// (package component stamps it as it reads the stream): a call's ring
// timeout counts from then, however long it waited for a worker.
func WithArrival(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, arrivalKey{}, t)
}

func (s *Service) arrival(ctx context.Context) time.Time {
	if t, ok := ctx.Value(arrivalKey{}).(time.Time); ok && s.cfg.Now == nil {
		return t
	}
	return s.now()
}

// Call handles one call signal forwarded by the server.
func (s *Service) Call(ctx context.Context, ev jingle.CallEvent) error {
	// Only one-to-one calls ring: a propose in a group chat would ring
	// every member, and a headline is no conversation.
	if ev.MessageType == "groupchat" || ev.MessageType == "headline" {
		s.m.calls.WithLabelValues(string(ev.Action), "not_one_to_one").Inc()
		return nil
	}
	switch ev.Action {
	case jingle.ActionPropose:
		return s.propose(ctx, ev)
	case jingle.ActionRetract:
		if ev.TieBreak {
			// Crossing proposes: the caller gave this one up for the other
			// (XEP-0353 tie-breaking). Nobody missed a call.
			return s.callerEndsAs(ctx, ev, EndTieBreak)
		}
		return s.callerEnds(ctx, ev)
	case jingle.ActionFinish:
		return s.finish(ctx, ev)
	case jingle.ActionProceed, jingle.ActionAccept:
		return s.calleeEnds(ctx, ev, EndAnswered)
	case jingle.ActionReject:
		if ev.TieBreak {
			return s.tieBreakReject(ctx, ev)
		}
		return s.calleeEnds(ctx, ev, EndDeclined)
	case jingle.ActionRinging:
		return s.ringing(ctx, ev)
	}
	// Call invites (XEP-0482) are counted, not rung: no iOS client speaks
	// them yet (docs/ios-app.md).
	s.m.calls.WithLabelValues(string(ev.Action), "ignored").Inc()
	return nil
}

func (s *Service) propose(ctx context.Context, ev jingle.CallEvent) error {
	if !s.Serves(ev.To) {
		s.m.calls.WithLabelValues("propose", "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.To.Bare())
	}
	arrived := s.arrival(ctx)
	p := proposal{
		account:       ev.To.Bare().String(),
		caller:        ev.From.Bare().String(),
		id:            ev.ID,
		from:          ev.From.String(),
		media:         ev.Media,
		delay:         ev.Delay,
		undeliverable: ev.Undeliverable(),
		arrived:       arrived,
		age:           max(s.now().Sub(arrived), 0),
		attempt:       newAttempt(),
		source:        "deliver",
		remote:        !s.Serves(ev.From),
	}
	if p.undeliverable {
		p.source = "undeliverable"
	}
	if p.account == p.caller {
		s.m.calls.WithLabelValues("propose", "self").Inc()
		return nil
	}
	if s.cfg.RingFrom == RingFromContacts && s.rosters != nil {
		p.refuse = s.contactCheck(ctx, p)
	}
	// A copy of a call this process rang from memory, arriving before the
	// outage's calls are recorded, records it: it must not ring again.
	p.pushed = s.outage.pushedFor(p)
	res, err := s.proposeUntilAnswered(ctx, p, arrived)
	if err != nil {
		return s.failOpen(ctx, p, arrived, err)
	}
	s.outage.answered(s)
	outcome := res.status
	switch res.status {
	case statusRinging:
		outcome = "duplicate"
	case statusStale:
		s.log.Info("stale propose dropped", "call_id", p.id, "caller", p.caller, "account", p.account, "delay", ev.Delay)
	case statusEnded:
		s.log.Debug("propose for an ended call", "call_id", p.id, "caller", p.caller, "account", p.account, "state", res.state)
	case statusRefused:
		s.refused(ctx, p, res)
	}
	for _, w := range res.wakes {
		s.wake(ctx, Wake{Call: res.call, Device: w.device, Kind: w.kind, Why: w.why, Attempt: p.attempt})
	}
	// Counted last: once the count moves, the pushes are queued.
	s.m.calls.WithLabelValues("propose", outcome).Inc()
	return nil
}

// proposeUntilAnswered runs the propose script until Redis answers. The
// attempt stays the same, so a script that ran although its answer was
// lost (a timeout while Redis was paused) hands its wakes to the retry. It
// gives up when the context ends, on an error a retry cannot mend, or
// once FailOpenAfter passed since the stanza arrived and this process
// knows the account's devices (the fail-open path rings them).
func (s *Service) proposeUntilAnswered(ctx context.Context, p proposal, arrived time.Time) (proposeResult, error) {
	wait := 50 * time.Millisecond
	start := time.Now()
	for {
		res, err := s.store.propose(ctx, p)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return res, err
		}
		p.age = max(s.now().Sub(arrived), 0)
		waited := p.age + time.Since(start) // the real time waiting, whatever the clock says
		if _, known := s.store.cache.get(p.account); known && waited >= s.cfg.FailOpenAfter {
			return res, err
		}
		if waited >= s.cfg.RingTimeout {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

// retryable tells a Redis that did not answer from one that refused: a
// script error or a wrong configuration comes back the same every time.
func retryable(err error) bool {
	if errors.Is(err, redis.ErrClosed) {
		return false // this process closed its client: shutting down
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // no answer: a timeout, a lost connection
	}
	for _, passing := range []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "READONLY", "MASTERDOWN"} {
		if strings.HasPrefix(rerr.Error(), passing) {
			return true
		}
	}
	return false
}

// wake hands a wake decision to the Notifier. When nothing will carry it
// (its queue is full), the wake's lease is made due: the next timer poll
// takes it over and tries again, as it would for a process that died.
func (s *Service) wake(ctx context.Context, w Wake) {
	s.m.wakes.WithLabelValues(string(w.Kind), string(w.Why)).Inc()
	s.log.Info("waking device", "call_id", w.Call.ID, "caller", w.Call.Caller, "account", w.Call.Account, "device", w.Device.ID, "kind", w.Kind, "why", w.Why)
	if s.notified(s.notify.Wake(ctx, w), "wake", w.Call.Account, w.Device.ID, w.Call.ID) == nil || w.Why == WhyFailOpen {
		return
	}
	if _, err := s.store.wakeOp(ctx, "retry", w.Key(), "", ""); err != nil {
		s.log.Warn("a wake not queued waits for its lease to run out", "call_id", w.Call.ID, "device", w.Device.ID, "error", err)
	}
}

func (s *Service) callerEnds(ctx context.Context, ev jingle.CallEvent) error {
	return s.callerEndsAs(ctx, ev, EndCancelled)
}

// callerEndsAs ends a call the caller (ev.From) made to a local callee.
func (s *Service) callerEndsAs(ctx context.Context, ev jingle.CallEvent, state EndState) error {
	if !s.Serves(ev.To) {
		s.m.calls.WithLabelValues(string(ev.Action), "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.To.Bare())
	}
	_, err := s.end(ctx, string(ev.Action), ev.To.Bare().String(), callRef(ev.From.Bare().String(), ev.ID), state, "")
	return err
}

// finish comes from either side: from the caller it ends a ringing call as
// cancelled; from the callee as answered (or declined, by its reason). A
// finish with <migrated/> moves the call to a new session: the old one
// ends without a missed-call alert (the new propose rings, or not, on its
// own).
func (s *Service) finish(ctx context.Context, ev jingle.CallEvent) error {
	fromCaller := EndCancelled
	if ev.MigratedTo != "" {
		fromCaller = EndMigrated
	}
	if s.Serves(ev.To) && ev.To.Bare().String() != ev.From.Bare().String() {
		status, err := s.end(ctx, "finish", ev.To.Bare().String(), callRef(ev.From.Bare().String(), ev.ID), fromCaller, "")
		if err != nil || status != statusUnknown {
			return err
		}
	}
	state := EndAnswered
	switch {
	case ev.MigratedTo != "":
		state = EndMigrated
	case ev.Reason == "decline" || ev.Reason == "busy":
		state = EndDeclined
	}
	return s.calleeEnds(ctx, ev, state)
}

// tieBreakReject is a reject with <tie-break/>: one of the callee's
// devices turned this propose down because its own crossing propose to the
// caller won. The call is over for the callee, and nobody missed it.
func (s *Service) tieBreakReject(ctx context.Context, ev jingle.CallEvent) error {
	return s.calleeEnds(ctx, ev, EndTieBreak)
}

// ringing records a <ringing/> from the callee's device: the push reached
// it and it rings. The time from the call's first delivered push is what
// a push gateway otherwise never learns.
func (s *Service) ringing(ctx context.Context, ev jingle.CallEvent) error {
	if !s.Serves(ev.From) {
		s.m.calls.WithLabelValues("ringing", "foreign").Inc()
		return nil
	}
	account := ev.From.Bare().String()
	ref := callRef(ev.To.Bare().String(), ev.ID)
	if ev.To.Bare().String() == account || ev.To.Equal(jid.JID{}) {
		var err error
		if ref, err = s.store.refByID(ctx, account, ev.ID); err != nil || ref == "" {
			s.m.calls.WithLabelValues("ringing", statusUnknown).Inc()
			return err
		}
	}
	after, bundle, err := s.store.rang(ctx, account, ref, ev.From.Resourcepart())
	if err != nil {
		return err
	}
	if after < 0 {
		s.m.calls.WithLabelValues("ringing", "not_pushed").Inc()
		return nil
	}
	s.m.calls.WithLabelValues("ringing", "after_push").Inc()
	s.m.pushToRinging.WithLabelValues(bundle).Observe(after.Seconds())
	return nil
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
		if ref, err = s.store.refByID(ctx, account, ev.ID); err != nil {
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
	res, err := s.store.end(ctx, account, ref, string(state), false, action)
	if err != nil {
		s.m.calls.WithLabelValues(action, "redis_error").Inc()
		return "", err
	}
	outcome := res.status
	if outcome == statusEndedNow {
		outcome = string(state)
		s.log.Info("call ended", "call_id", res.call.ID, "caller", res.call.Caller, "account", account, "state", state, "woken", len(res.woken))
		s.tellEnd(ctx, res.call, res.woken, state, leaveOut)
	}
	s.m.calls.WithLabelValues(action, outcome).Inc()
	return res.status, nil
}

// tellEnd hands the end of a call to the Notifier for each woken device
// but the one on resource leaveOut.
func (s *Service) tellEnd(ctx context.Context, c Call, woken []wake, state EndState, leaveOut string) {
	for _, w := range woken {
		if leaveOut != "" && w.device.Resource == leaveOut {
			continue
		}
		_ = s.notified(s.notify.CallEnded(ctx, CallEnd{Call: c, Device: w.device, State: state}), "call_end", c.Account, w.device.ID, c.ID)
	}
}
