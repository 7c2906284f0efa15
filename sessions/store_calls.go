package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// wake is a device the propose or publish script marked woken.
type wake struct {
	device Device
	kind   WakeKind
	why    WakeReason
}

type proposal struct {
	account, caller, id, from string
	media                     []string
	delay                     time.Time // zero: none
	undeliverable             bool
}

type proposeResult struct {
	status  string // statusCreated | statusRinging | statusStale | statusEnded | statusLate
	state   string // the final state, when status is statusEnded
	call    Call
	devices map[string]string // every device of the account (id → JSON), for the fail-open cache
	wakes   []wake
}

// propose runs propose.lua and queues the call's ring timeout in the same
// round trip.
func (s *Store) propose(ctx context.Context, p proposal, now time.Time, t timing) (proposeResult, error) {
	ref := callRef(p.caller, p.id)
	keys := []string{
		s.keys.call(p.account, ref), s.keys.woken(p.account, ref), s.keys.ringing(p.account),
		s.keys.devices(p.account), s.keys.presence(p.account), s.keys.published(p.account),
		s.keys.lastCall(p.account),
	}
	delay := int64(0)
	if !p.delay.IsZero() {
		delay = ms(p.delay)
	}
	args := []any{
		ms(now), t.ring.Milliseconds(), (t.ring + t.grace).Milliseconds(), t.stale.Milliseconds(), delay,
		flag(p.undeliverable), flag(t.wakeOnPublish), ref, p.from, strings.Join(p.media, ","), p.caller,
	}
	timer := redis.Z{Score: float64(ms(now.Add(t.ring))), Member: timerMember(timerCall, p.account, ref)}

	req := &proposeReq{ctx: ctx, keys: keys, args: args, timer: timer, timers: s.keys.timers()}
	s.batch.do(req)
	res, err := req.res, req.err
	if isNoScript(err) {
		// Redis lost its scripts (a restart): send the source this once.
		res, err = s.run(ctx, proposeScript, keys, args...)
		if err == nil {
			req.tErr = s.addTimer(ctx, timer.Member.(string), time.UnixMilli(int64(timer.Score)))
		}
	}
	if err != nil {
		return proposeResult{}, fmt.Errorf("sessions: propose: %w", err)
	}
	if req.tErr != nil {
		return proposeResult{}, fmt.Errorf("sessions: propose timer: %w", req.tErr)
	}

	out := proposeResult{status: str(res, 0)}
	switch out.status {
	case statusEnded:
		out.state = str(res, 1)
		return out, nil
	case statusCreated, statusRinging:
	default:
		return out, nil
	}
	out.call = Call{
		Account: p.account, Caller: p.caller, ID: p.id,
		Created:  time.UnixMilli(num(res, 1)),
		Deadline: time.UnixMilli(num(res, 2)),
		From:     str(res, 3),
		Media:    splitMedia(str(res, 4)),
	}
	n := int(num(res, 5))
	out.devices = make(map[string]string, n)
	i := 6
	for range n {
		out.devices[str(res, i)] = str(res, i+1)
		i += 2
	}
	s.cache.put(p.account, out.devices)
	// Only the woken devices are decoded: the others are kept as JSON.
	for ; i+2 < len(res); i += 3 {
		if d, err := parseDevice(out.devices[str(res, i)]); err == nil {
			out.wakes = append(out.wakes, wake{device: d, kind: WakeKind(str(res, i+1)), why: WakeReason(str(res, i+2))})
		}
	}
	return out, nil
}

type endResult struct {
	status string // statusEndedNow | statusEnded | statusUnknown | statusEarly
	state  string // the state before, when status is statusEnded
	call   Call
	woken  []wake
}

// end moves a ringing call to state (see end.lua).
func (s *Store) end(ctx context.Context, account, ref, state, leaveOut string, onlyDue bool, now time.Time) (endResult, error) {
	keys := []string{
		s.keys.call(account, ref), s.keys.woken(account, ref), s.keys.ringing(account), s.keys.devices(account),
	}
	res, err := s.run(ctx, endScript, keys, ms(now), state, ref, leaveOut, flag(onlyDue))
	if err != nil {
		return endResult{}, fmt.Errorf("sessions: end call: %w", err)
	}
	out := endResult{status: str(res, 0)}
	switch out.status {
	case statusEnded:
		out.state = str(res, 1)
		return out, nil
	case statusEndedNow:
	default:
		return out, nil
	}
	caller, id, _ := splitRef(ref)
	out.call = Call{
		Account: account, Caller: caller, ID: id,
		Created:  time.UnixMilli(num(res, 1)),
		Deadline: time.UnixMilli(num(res, 2)),
		From:     str(res, 3),
		Media:    splitMedia(str(res, 4)),
	}
	for i := 6; i+2 < len(res); i += 3 {
		d, err := parseDevice(str(res, i+2))
		if err != nil {
			continue
		}
		out.woken = append(out.woken, wake{device: d, kind: WakeKind(str(res, i+1))})
	}
	return out, nil
}

// ringingRefs returns the refs of the calls ringing for an account at now,
// and the account's lastcall key as read in the same round trip ("" when
// absent): a script given the refs can tell from it whether a call started
// since.
func (s *Store) ringingRefs(ctx context.Context, account string, now time.Time) (refs []string, lastCall string, err error) {
	pipe := s.rdb.Pipeline()
	ringing := pipe.HGetAll(ctx, s.keys.ringing(account))
	last := pipe.Get(ctx, s.keys.lastCall(account))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("sessions: ringing calls: %w", err)
	}
	m := ringing.Val()
	refs = make([]string, 0, len(m))
	for ref, deadline := range m {
		var d int64
		if _, err := fmt.Sscan(deadline, &d); err == nil && d > ms(now) {
			refs = append(refs, ref)
		}
	}
	return refs, last.Val(), nil
}

// refByID finds the ringing call of an account with the given id, for an
// accept or reject a callee sent to its own bare JID (no caller named).
func (s *Store) refByID(ctx context.Context, account, id string, now time.Time) (string, error) {
	refs, _, err := s.ringingRefs(ctx, account, now)
	if err != nil {
		return "", err
	}
	for _, ref := range refs {
		if _, rid, ok := splitRef(ref); ok && rid == id {
			return ref, nil
		}
	}
	return "", nil
}

type publishWake struct {
	call Call
	kind WakeKind
}

type publishResult struct {
	status      string // statusCall | statusHold | statusMessage | statusGone
	wakes       []publishWake
	device      Device // for "message"
	holdStarted bool
}

// publishRetries bounds how often publish reads the ringing calls again
// because a call started meanwhile.
const publishRetries = 3

// publish runs publish.lua for one device (see there).
//
// The script learns the ringing calls from this read, made before it runs.
// A call whose propose runs in between would be missed twice over: its
// propose saw no publish yet, and the publish would not see the call. It
// happens: a publish follows the copy of its propose by milliseconds
// (ejabberd's always, Prosody's often), and the two are handled by
// different workers. The script then answers "retry" (the account's
// lastcall moved), and the read is made again.
func (s *Store) publish(ctx context.Context, account string, d Device, now time.Time, t timing, wakeOK bool, pending pendingMessage) (publishResult, error) {
	for attempt := 1; ; attempt++ {
		refs, lastCall, err := s.ringingRefs(ctx, account, now)
		if err != nil {
			return publishResult{}, err
		}
		keys := []string{s.keys.devices(account), s.keys.published(account), s.keys.pending(account), s.keys.lastCall(account)}
		for _, ref := range refs {
			keys = append(keys, s.keys.call(account, ref), s.keys.woken(account, ref))
		}
		// The script runs only while lastcall still is what was read.
		pending.LastCall = lastCall
		pm, _ := json.Marshal(pending)
		res, err := s.run(ctx, publishScript, keys, ms(now), d.ID, t.ring.Milliseconds(), flag(wakeOK), t.hold.Milliseconds(), string(pm), lastCall)
		if err != nil {
			return publishResult{}, fmt.Errorf("sessions: publish: %w", err)
		}
		if str(res, 0) != statusRetry {
			return publishOutcome(res, account, refs)
		}
		if attempt == publishRetries {
			return publishResult{}, errors.New("sessions: publish: calls keep starting for " + account)
		}
	}
}

// publishOutcome reads publish.lua's answer; refs are the calls the script
// was given.
func publishOutcome(res []any, account string, refs []string) (publishResult, error) {
	var err error
	out := publishResult{status: str(res, 0)}
	switch out.status {
	case statusCall:
		for i := 1; i+6 < len(res); i += 7 {
			k := int(num(res, i)) // index into keys of the call's key
			r := (k - 5) / 2
			if r < 0 || r >= len(refs) {
				continue
			}
			caller, id, _ := splitRef(refs[r])
			out.wakes = append(out.wakes, publishWake{
				kind: WakeKind(str(res, i+1)),
				call: Call{
					Account: account, Caller: caller, ID: id,
					Created:  time.UnixMilli(num(res, i+2)),
					Deadline: time.UnixMilli(num(res, i+3)),
					From:     str(res, i+4),
					Media:    splitMedia(str(res, i+5)),
				},
			})
		}
	case statusHold:
		out.holdStarted = num(res, 1) == 1
	case statusMessage:
		out.device, err = parseDevice(str(res, 1))
		if err != nil {
			return publishResult{}, err
		}
	}
	return out, nil
}

// messageDue takes a held message alert (see message_due.lua).
func (s *Store) messageDue(ctx context.Context, account, deviceID string) (status string, d Device, pending string, err error) {
	keys := []string{s.keys.devices(account), s.keys.pending(account), s.keys.lastCall(account)}
	res, err := s.run(ctx, messageDueScript, keys, deviceID)
	if err != nil {
		return "", Device{}, "", fmt.Errorf("sessions: message due: %w", err)
	}
	status = str(res, 0)
	if status == statusMessage {
		d, err = parseDevice(str(res, 1))
		if err != nil {
			return "", Device{}, "", err
		}
		pending = str(res, 2)
	}
	return status, d, pending, nil
}

// timing carries the durations the scripts need.
type timing struct {
	ring, grace, stale, hold time.Duration
	wakeOnPublish            bool
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func splitMedia(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
