package sessions

import (
	"context"
	"time"
)

// The decisions sessions makes about devices leave it as the small types
// below, to a Notifier it owns the interface of: package pushnotify turns
// them into APNs requests, and another push service would implement the
// same three methods. What comes back (dead tokens, "does this call still
// ring?") comes through Feedback, also owned here.

// Notifier carries sessions' decisions to the devices. Each method queues
// its work and returns at once; an error means nothing will reach the
// device (the queue is full, the notifier is closing, the device cannot be
// reached this way), so a later copy of the same event may try again.
type Notifier interface {
	// Wake rings a device for a call that rings now.
	Wake(ctx context.Context, w Wake) error
	// CallEnded tells a device that was woken for a call how it ended.
	CallEnded(ctx context.Context, e CallEnd) error
	// Message tells a device that a message waits for it.
	Message(ctx context.Context, m Message) error
}

// Feedback is what a Notifier reports back about the devices it reaches
// (Store implements it).
type Feedback interface {
	// TokenDead removes a token the push service called dead, and the
	// device with it when it has no token left. A device that registered
	// the token again after t.InvalidSince keeps it. It reports whether
	// anything was removed.
	TokenDead(ctx context.Context, t DeadToken) (removed bool, err error)
	// WakeWanted is asked before a wake's push that waited (a retry, a
	// backlog): it reports whether the call still rings and the wake is
	// still this attempt's to deliver (another process may have taken it
	// over), and renews the attempt's hold on it.
	WakeWanted(ctx context.Context, k WakeKey) (bool, error)
	// Pushed reports how one push attempt went. It never blocks: the
	// report is recorded in the background (the call's trace, and for a
	// wake's final attempt, that the wake is settled, so no other process
	// takes it over).
	Pushed(r PushReport)
}

// PushReport is one push attempt, as the push service saw it.
type PushReport struct {
	Wake     *WakeKey // the wake this push carried; nil for other pushes
	Call     CallKey  // the call it was about; zero for a message
	DeviceID string
	Kind     string        // the push's kind, e.g. "voip", "alert", "background"
	Result   string        // "success", the service's reason, or why no answer came
	Status   int           // the service's status code, 0 without an answer
	Latency  time.Duration // of the attempt
	Attempts int           // attempts so far
	Final    bool          // nothing more will be tried
}

// Delivered reports whether the push service took the push.
func (r PushReport) Delivered() bool { return r.Result == "success" || r.Result == "dry_run" }

// WakeKind is how a device is rung.
type WakeKind string

// Wake kinds.
const (
	// WakeVoIP rings the device's native call screen (PushKit on iOS).
	WakeVoIP WakeKind = "voip"
	// WakeAlert shows a visible "incoming call" alert: the device has no
	// VoIP token.
	WakeAlert WakeKind = "alert"
)

// WakeReason is which condition of DESIGN.md section 4 woke a device.
type WakeReason string

// Wake reasons.
const (
	WhyPresence      WakeReason = "presence"      // its resource is not available (or unknown)
	WhyUndeliverable WakeReason = "undeliverable" // the server could not deliver the propose live
	WhyPublish       WakeReason = "publish"       // a XEP-0357 publish for it came with the call
	WhyFailOpen      WakeReason = "fail_open"     // Redis failed: rung from this process's memory
	WhyTakeover      WakeReason = "takeover"      // the process that held the wake died before delivering it
	WhyAgain         WakeReason = "again"         // the same attempt's wake, handed out again (a lost answer)
)

// Call is a call as the devices are told of it.
type Call struct {
	Account  string   // the callee's bare JID
	Caller   string   // the caller's bare JID
	ID       string   // the JMI id (= Jingle sid)
	From     string   // the caller's full JID, as the propose came
	Media    []string // "audio", "video"
	Created  time.Time
	Deadline time.Time // the ring deadline
}

// Key names the call.
func (c Call) Key() CallKey { return CallKey{Account: c.Account, Caller: c.Caller, ID: c.ID} }

// CallKey names a call: the callee's account, the caller's bare JID and
// the call id (DESIGN.md section 4).
type CallKey struct {
	Account, Caller, ID string
}

func (k CallKey) ref() string { return callRef(k.Caller, k.ID) }

// Wake is the decision to ring a device for a call. Attempt names the
// handling that took the wake: the push must report back under it.
type Wake struct {
	Call    Call
	Device  Device
	Kind    WakeKind
	Why     WakeReason
	Attempt string
}

// Key names the wake.
func (w Wake) Key() WakeKey {
	return WakeKey{Call: w.Call.Key(), DeviceID: w.Device.ID, Attempt: w.Attempt}
}

// WakeKey names one wake: a device, a call and the attempt that holds it.
type WakeKey struct {
	Call     CallKey
	DeviceID string
	Attempt  string
}

// How a call ended, for the devices that were woken for it.
type EndState string

// End states (DESIGN.md section 4).
const (
	EndAnswered  EndState = StateAnswered  // another device of the callee took it
	EndDeclined  EndState = StateDeclined  // another device of the callee turned it down
	EndCancelled EndState = StateCancelled // the caller gave up
	EndMissed    EndState = StateMissed    // nobody answered in time
	EndMigrated  EndState = StateMigrated  // the call moved to another session (XEP-0353 finish with <migrated/>)
	EndTieBreak  EndState = StateTieBreak  // crossing proposes: this one gave way to the other
)

// Unanswered reports whether the callee should be told of a missed call.
func (s EndState) Unanswered() bool { return s == EndCancelled || s == EndMissed }

// CallEnd is the decision to tell a device that was woken for a call how
// the call ended.
type CallEnd struct {
	Call   Call
	Device Device
	State  EndState
}

// Message is the decision to tell a device that a message is waiting: a
// XEP-0357 publish that no call claimed. Sender and Body are the server's
// summary, empty when it sent none.
type Message struct {
	Account string
	Device  Device
	Sender  string
	Body    string
}

// DeadToken is a device token the push service called dead.
type DeadToken struct {
	Account, DeviceID, Token string
	// InvalidSince is when the service last found the token invalid (the
	// timestamp of an APNs 410); zero when it gave no time.
	InvalidSince time.Time
}
