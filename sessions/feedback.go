package sessions

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"
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
		err := s.recordPush(ctx, op, k, text)
		if s.settled != nil && op != "note" {
			s.settled(op, err)
		}
	}()
}

// recordPush is Pushed's write, waited for.
func (s *Store) recordPush(ctx context.Context, op string, k WakeKey, text string) error {
	c := s.wakeCall(op, k, text)
	s.batch.do(ctx, c)
	return c.err
}

// wakeCall is a wake.lua call for the batcher.
func (s *Store) wakeCall(op string, k WakeKey, text string) *scriptCall {
	base := s.keys.base(k.Call.Account)
	pol := s.pol
	return &scriptCall{script: wakeScript,
		keys: []string{s.keys.call(k.Call.Account, k.Call.ref()), s.keys.devices(k.Call.Account)},
		args: s.args(base, k.Call.Account, op, k.Call.ref(), k.DeviceID, k.Attempt, pol.lease.Milliseconds(), text, "", pol.deviceTTL.Milliseconds())}
}
