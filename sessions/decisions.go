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
	// StillRinging reports whether a call still rings: a push for it that
	// waited (a retry, a backlog) goes out only while it does.
	StillRinging(ctx context.Context, c CallKey) (bool, error)
}

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

// Wake is the decision to ring a device for a call.
type Wake struct {
	Call   Call
	Device Device
	Kind   WakeKind
	Why    WakeReason
}

// How a call ended, for the devices that were woken for it.
type EndState string

// End states (DESIGN.md section 4).
const (
	EndAnswered  EndState = StateAnswered  // another device of the callee took it
	EndDeclined  EndState = StateDeclined  // another device of the callee turned it down
	EndCancelled EndState = StateCancelled // the caller gave up
	EndMissed    EndState = StateMissed    // nobody answered in time
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
