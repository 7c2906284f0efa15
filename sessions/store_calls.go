package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// wake is a device a script handed out to be woken.
type wake struct {
	device Device
	kind   WakeKind
	why    WakeReason
}

// proposal is one copy of a propose, as the Store needs it.
type proposal struct {
	account, caller, id, from string
	media                     []string
	delay                     time.Time // zero: none
	undeliverable             bool
	arrived                   time.Time     // when the stanza arrived
	age                       time.Duration // since then
	attempt                   string        // this handling's id: the same on every retry of it
	source                    string        // for the trace: deliver | undeliverable
	remote                    bool          // the caller's domain is not served here
	refuse                    string        // a refusal decided before Redis ("": none)
	pushed                    []string      // devices rung from memory while Redis was away
}

// policy is what the scripts need of the Service's configuration.
type policy struct {
	ring, grace, stale, hold, window, lease, deviceTTL time.Duration
	wakeOnPublish, onePerCaller                        bool
	maxRinging, maxPerDomain, pairPerMinute            int
	callerPerMinute, domainPerMinute                   int
	strangerWindow                                     time.Duration
}

type proposeResult struct {
	status    string // statusCreated | statusRinging | statusStale | statusEnded | statusLate | statusRefused
	state     string // the final state (statusEnded) or why it was refused (statusRefused)
	call      Call
	devices   []Device // every device of the account, for the fail-open cache; a stranger's alert
	available []string // the account's available resources, for the fail-open cache
	wakes     []wake
}

// newAttempt names one handling of a stanza: the scripts hand a wake to the
// attempt that marked it, and to it alone.
func newAttempt() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// propose runs propose.lua, and the budgets of the caller and of its
// remote domain in the same round trip. A call the budgets refuse is
// refused before its wakes leave.
func (s *Store) propose(ctx context.Context, p proposal) (proposeResult, error) {
	pol := s.pol
	ref := callRef(p.caller, p.id)
	base := s.keys.base(p.account)
	delay := int64(0)
	if !p.delay.IsZero() {
		delay = ms(p.delay)
	}
	prop := &scriptCall{script: proposeScript, keys: []string{s.keys.devices(p.account)}, args: s.args(base, p.account,
		p.caller, p.id, p.from, strings.Join(p.media, ","), delay, flag(p.undeliverable),
		flag(pol.wakeOnPublish), pol.ring.Milliseconds(), (pol.ring + pol.grace).Milliseconds(), pol.stale.Milliseconds(), p.age.Milliseconds(),
		p.attempt, pol.lease.Milliseconds(), pol.deviceTTL.Milliseconds(), pol.window.Milliseconds(),
		pol.maxRinging, pol.maxPerDomain, pol.pairPerMinute, flag(p.remote), p.source, p.refuse,
		pol.strangerWindow.Milliseconds(), strings.Join(p.pushed, "\n"), flag(pol.onePerCaller),
	)}
	calls := []*scriptCall{prop}
	// The caller's own budget is named first when both are spent.
	type budget struct {
		call   *scriptCall
		reason string
	}
	var budgets []budget
	addBudget := func(name string, perMinute int, reason string) {
		if perMinute <= 0 || p.refuse != "" || len(p.pushed) > 0 {
			return
		}
		c := &scriptCall{script: budgetScript, keys: []string{s.keys.budget(name)},
			args: s.args(s.keys.base(name), name, perMinute, p.account+"/"+ref)}
		budgets = append(budgets, budget{c, reason})
		calls = append(calls, c)
	}
	addBudget(p.caller, pol.callerPerMinute, refusedCaller)
	if p.remote {
		addBudget("domain:"+domainOf(p.caller), pol.domainPerMinute, refusedRemote)
	}
	s.batch.do(ctx, calls...)
	if prop.err != nil {
		return proposeResult{}, fmt.Errorf("sessions: propose: %w", prop.err)
	}
	out, err := s.proposeOutcome(p, prop.res)
	if err != nil || out.status != statusCreated {
		return out, err
	}
	for _, b := range budgets {
		// A budget that could not be read lets the call ring: a real call
		// lost costs more than a stranger's call let through.
		if b.call.err == nil && num(b.call.res, 0) == 0 {
			if err := s.refuse(ctx, p.account, ref, b.reason); err != nil {
				return proposeResult{}, err
			}
			return proposeResult{status: statusRefused, state: b.reason, call: out.call}, nil
		}
	}
	return out, nil
}

func (s *Store) proposeOutcome(p proposal, res []any) (proposeResult, error) {
	out := proposeResult{status: str(res, 0)}
	switch out.status {
	case statusEnded:
		out.state = str(res, 1)
		return out, nil
	case statusRefused:
		out.state = str(res, 1)
		if raw := str(res, 2); raw != "" {
			out.devices, _ = decodeDevices(p.account, []byte(raw))
		}
		out.call = Call{Account: p.account, Caller: p.caller, ID: p.id, From: p.from, Media: p.media, Created: p.arrived, Deadline: p.arrived.Add(s.pol.ring)}
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
	if raw := str(res, 5); raw != "" {
		out.devices, _ = decodeDevices(p.account, []byte(raw))
	}
	if av := str(res, 6); av != "" {
		out.available = strings.Split(av, "\n")
	}
	s.cache.put(p.account, out.devices, out.available)
	for i := 7; i+2 < len(res); i += 3 {
		for _, d := range out.devices {
			if d.ID == str(res, i) {
				out.wakes = append(out.wakes, wake{device: d, kind: WakeKind(str(res, i+1)), why: WakeReason(str(res, i+2))})
				break
			}
		}
	}
	return out, nil
}

// refuse ends a call that was created but may not ring (refuse.lua).
func (s *Store) refuse(ctx context.Context, account, ref, reason string) error {
	base := s.keys.base(account)
	if _, err := s.run(ctx, refuseScript, []string{s.keys.call(account, ref)}, s.args(base, account, ref, reason)...); err != nil {
		return fmt.Errorf("sessions: refuse call: %w", err)
	}
	return nil
}

type endResult struct {
	status string // statusEndedNow | statusEnded | statusUnknown | statusEarly
	state  string // the state before, when status is statusEnded
	call   Call
	woken  []wake
}

// end moves a ringing call to state (see end.lua); how is for the trace.
func (s *Store) end(ctx context.Context, account, ref, state string, onlyDue bool, how string) (endResult, error) {
	base := s.keys.base(account)
	keys := []string{s.keys.call(account, ref), s.keys.devices(account)}
	res, err := s.run(ctx, endScript, keys, s.args(base, account, ref, state, flag(onlyDue), how)...)
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
	devices, _ := decodeDevices(account, []byte(str(res, 6)))
	for i := 7; i+1 < len(res); i += 2 {
		for _, d := range devices {
			if d.ID == str(res, i) {
				out.woken = append(out.woken, wake{device: d, kind: WakeKind(str(res, i+1))})
				break
			}
		}
	}
	return out, nil
}

// refByID finds the ringing call of an account with the given id, for an
// accept or reject a callee sent to its own bare JID (no caller named).
func (s *Store) refByID(ctx context.Context, account, id string) (string, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.ringing(account)).Result()
	if err != nil {
		return "", fmt.Errorf("sessions: ringing calls: %w", err)
	}
	for ref := range m {
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
	status      string // statusCall | statusHold | statusMessage | statusGone | statusForbidden
	device      Device
	wakes       []publishWake
	holdStarted bool
}

// publish runs publish.lua for the device of a node (see there); secret
// is what the publish presented.
func (s *Store) publish(ctx context.Context, account string, node []byte, secret string, wakeOK bool, hold time.Duration, held string, attempt string) (publishResult, error) {
	pol := s.pol
	base := s.keys.base(account)
	sum := sha1.Sum(mustDecodeSecret(secret))
	res, err := s.run(ctx, publishScript, []string{s.keys.devices(account)}, s.args(base, account,
		string(node), hex.EncodeToString(sum[:]), flag(wakeOK), hold.Milliseconds(), held,
		pol.ring.Milliseconds(), pol.window.Milliseconds(), attempt, pol.lease.Milliseconds(), pol.deviceTTL.Milliseconds(),
		pol.hold.Milliseconds())...)
	if err != nil {
		return publishResult{}, fmt.Errorf("sessions: publish: %w", err)
	}
	out := publishResult{status: str(res, 0)}
	switch out.status {
	case statusCall, statusMessage:
		if out.device, err = decodeDevice(account, []byte(str(res, 1))); err != nil {
			return publishResult{}, err
		}
	case statusHold:
		out.holdStarted = num(res, 1) == 1
	}
	if out.status == statusCall {
		for i := 2; i+5 < len(res); i += 6 {
			caller, id, _ := splitRef(str(res, i))
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
	}
	return out, nil
}

// mustDecodeSecret is the raw secret the record stores; a secret that is
// not base64 (forged or mistyped) hashes to something no record holds.
func mustDecodeSecret(secret string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil {
		return []byte("\x00not a secret:" + secret)
	}
	return b
}

// messageDue takes a held message alert (see message_due.lua).
func (s *Store) messageDue(ctx context.Context, account, deviceID string) (status string, d Device, held string, err error) {
	pol := s.pol
	base := s.keys.base(account)
	res, err := s.run(ctx, messageDueScript, []string{s.keys.devices(account)}, s.args(base, account, deviceID, pol.deviceTTL.Milliseconds())...)
	if err != nil {
		return "", Device{}, "", fmt.Errorf("sessions: message due: %w", err)
	}
	status = str(res, 0)
	if status == statusMessage {
		if d, err = decodeDevice(account, []byte(str(res, 1))); err != nil {
			return "", Device{}, "", err
		}
		held = str(res, 2)
	}
	return status, d, held, nil
}

// wakeOp runs one op of wake.lua (see there) for a device's wake.
func (s *Store) wakeOp(ctx context.Context, op string, k WakeKey, text, newAttempt string) ([]any, error) {
	pol := s.pol
	base := s.keys.base(k.Call.Account)
	keys := []string{s.keys.call(k.Call.Account, k.Call.ref()), s.keys.devices(k.Call.Account)}
	res, err := s.run(ctx, wakeScript, keys, s.args(base, k.Call.Account, op, k.Call.ref(), k.DeviceID, k.Attempt,
		pol.lease.Milliseconds(), text, newAttempt, pol.deviceTTL.Milliseconds())...)
	if err != nil {
		return nil, fmt.Errorf("sessions: wake %s: %w", op, err)
	}
	return res, nil
}

// rang records a <ringing/> (ringing.lua): how long after the call's first
// delivered push it came (negative: no push, or counted already), and the
// app of the device on resource.
func (s *Store) rang(ctx context.Context, account, ref, resource string) (time.Duration, string, error) {
	base := s.keys.base(account)
	keys := []string{s.keys.call(account, ref), s.keys.devices(account)}
	res, err := s.run(ctx, ringingScript, keys, s.args(base, account, ref, resource, s.pol.deviceTTL.Milliseconds())...)
	if err != nil {
		return 0, "", fmt.Errorf("sessions: ringing: %w", err)
	}
	return time.Duration(num(res, 0)) * time.Millisecond, str(res, 1), nil
}

func splitMedia(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// domainOf is the domain of a bare JID.
func domainOf(bare string) string {
	if _, d, ok := strings.Cut(bare, "@"); ok {
		return d
	}
	return bare
}
