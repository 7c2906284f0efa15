package pushnotify

import (
	"time"

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

// Notification is one push to one device token.
type Notification struct {
	Kind        Kind
	Token       string // hex device token (a PushKit token for KindVoIP)
	BundleID    string // the app; the topic is derived from it and Kind
	Environment string // Production or Sandbox: which APNs host
	CollapseID  string // apns-collapse-id (≤ 64 bytes), "" for none
	Expiration  time.Time
	// Deadline is when trying stops: a call push is worthless once the call
	// stopped ringing. Zero means the Sender's default.
	Deadline time.Time
	Payload  []byte

	// For logs, metrics and dead-token removal.
	Account  string
	DeviceID string
	CallID   string
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

func (n Notification) pushType() apns2.EPushType {
	switch n.Kind {
	case KindVoIP:
		return apns2.PushTypeVOIP
	case KindBackground:
		return apns2.PushTypeBackground
	}
	return apns2.PushTypeAlert
}

func (n Notification) apns() *apns2.Notification {
	collapse := n.CollapseID
	if len(collapse) > 64 {
		collapse = collapse[:64]
	}
	return &apns2.Notification{
		DeviceToken: n.Token,
		Topic:       n.Topic(),
		CollapseID:  collapse,
		Expiration:  n.Expiration,
		Priority:    n.Priority(),
		PushType:    n.pushType(),
		Payload:     n.Payload,
	}
}

// tokenPrefix is how a token appears in logs: never whole.
func tokenPrefix(token string) string {
	if len(token) <= 8 {
		return token
	}
	return token[:8] + "…"
}
