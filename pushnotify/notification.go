package pushnotify

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/sideshow/apns2"
)

// Kind is the kind of a push, which fixes its APNs headers.
type Kind string

// The three kinds jinglepush sends.
const (
	KindVoIP       Kind = "voip"       // PushKit: a new ringing call, nothing else
	KindAlert      Kind = "alert"      // visible: incoming call without VoIP token, missed call, message
	KindBackground Kind = "background" // silent: answered or declined elsewhere
)

// Environments of a device token.
const (
	Production = "production"
	Sandbox    = "sandbox"
)

// maxTokenLen bounds a device token (hex): DESIGN.md section 3 allows 200
// digits at registration.
const maxTokenLen = 200

// Notification is one push to one device token.
type Notification struct {
	Kind        Kind
	Token       string // hex device token (a PushKit token for KindVoIP)
	BundleID    string // the app; the topic is derived from it and Kind
	Environment string // Production or Sandbox: which APNs host; "" is the app's default
	CollapseID  string // apns-collapse-id (≤ 64 bytes), "" for none
	// Expiration is apns-expiration: APNs keeps the push for an offline
	// device until then. Zero sends no header, except for KindVoIP, which
	// gets its Deadline: a call push must never arrive after the call.
	Expiration time.Time
	// Deadline is when trying stops: a call push is worthless once the call
	// stopped ringing. No attempt starts at or after it, and a request in
	// flight is cut at it. Zero means the Sender's default, and never later
	// than Expiration.
	Deadline time.Time
	Payload  []byte
	// ID is the apns-id, a UUID that stays the same over every retry of
	// this push, so the app can tell a repeat from a new push when an
	// answer was lost. Empty: Push makes one.
	ID string
	// Wanted, when set, is asked before every retry, and before a first
	// attempt that waited in the queue longer than Config.BacklogCheck:
	// false ends the push unsent, counted as "not_wanted". A call push asks
	// whether its call still rings (and the wake is still this process's),
	// so neither a retry nor a backlog reaches a phone after the caller
	// hung up or another device answered, even when another process saw
	// the end. It runs in a sender with a short deadline; on trouble it
	// should answer true (the ring deadline still bounds the retries).
	Wanted func(ctx context.Context) bool
	// Report, when set, hears how each attempt went (sessions.Feedback's
	// Pushed). It must not block.
	Report func(a Attempt)

	// For logs, metrics and dead-token removal.
	Account  string
	DeviceID string
	CallID   string
}

// Attempt is how one APNs request for a push went.
type Attempt struct {
	Result   string // "success", an APNs reason, or why no answer came
	Status   int    // 0 without an answer
	Latency  time.Duration
	Attempts int  // attempts so far, this one included
	Final    bool // the push reached its end
}

// Topic is the apns-topic: the bundle id, with ".voip" for PushKit.
func (n Notification) Topic() string {
	if n.Kind == KindVoIP {
		return n.BundleID + ".voip"
	}
	return n.BundleID
}

// Priority is the apns-priority: 10 (now) except for background pushes,
// which Apple requires to be sent at 5.
func (n Notification) Priority() int {
	if n.Kind == KindBackground {
		return apns2.PriorityLow
	}
	return apns2.PriorityHigh
}

// kindLabel is Kind as a metric label: an unknown kind must not add series.
func (n Notification) kindLabel() string {
	switch n.Kind {
	case KindVoIP, KindAlert, KindBackground:
		return string(n.Kind)
	}
	return "invalid"
}

func (n Notification) pushType() apns2.EPushType {
	switch n.Kind {
	case KindVoIP:
		return apns2.PushTypeVOIP
	case KindBackground:
		return apns2.PushTypeBackground
	}
	return apns2.PushTypeAlert
}

// maxPayload is the body size APNs takes for the push's kind.
func (n Notification) maxPayload() int {
	if n.Kind == KindVoIP {
		return MaxVoIPPayload
	}
	return MaxPayload
}

// check finds what APNs would refuse whatever the moment: such a push is
// turned down by Push at once rather than failing later. The label names
// the problem in the dropped counter.
func (n Notification) check() (label string, err error) {
	switch {
	case n.Kind != KindVoIP && n.Kind != KindAlert && n.Kind != KindBackground:
		return "invalid", fmt.Errorf("%w: kind %q", ErrInvalid, n.Kind)
	case !isHex(n.Token) || len(n.Token) > maxTokenLen:
		// The token goes into the request path: never anything but hex.
		return "invalid", fmt.Errorf("%w: device token must be 1 to %d hex digits", ErrInvalid, maxTokenLen)
	case len(n.Payload) == 0:
		return "invalid", fmt.Errorf("%w: empty payload", ErrInvalid)
	case len(n.Payload) > n.maxPayload():
		return "payload_too_large", fmt.Errorf("%w: payload of %d bytes, APNs takes %d for a %s push", ErrInvalid, len(n.Payload), n.maxPayload(), n.Kind)
	}
	if n.ID != "" {
		if _, err := uuid.Parse(n.ID); err != nil || len(n.ID) != 36 {
			return "invalid", fmt.Errorf("%w: apns-id %q is not a UUID", ErrInvalid, n.ID)
		}
	}
	return "", nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (n Notification) apns() *apns2.Notification {
	collapse := n.CollapseID
	if len(collapse) > 64 {
		collapse = collapse[:64]
	}
	return &apns2.Notification{
		ApnsID:      n.ID,
		DeviceToken: n.Token,
		Topic:       n.Topic(),
		CollapseID:  collapse,
		Expiration:  n.Expiration,
		Priority:    n.Priority(),
		PushType:    n.pushType(),
		Payload:     n.Payload,
	}
}

// TokenPrefix is how a token appears in logs and in the operator's
// commands: never whole.
func TokenPrefix(token string) string { return tokenPrefix(token) }

// tokenPrefix is how a token appears in logs: never whole.
func tokenPrefix(token string) string {
	return token[:min(8, len(token)/2)] + "…"
}
