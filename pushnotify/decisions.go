package pushnotify

import (
	"context"
	"fmt"
	"time"

	"github.com/jinglepush/jinglepush/sessions"
)

// The Sender is the sessions.Notifier of APNs: each decision of package
// sessions becomes one Notification here, with its kind, topic, token,
// collapse id, expiration and body. Every rule about what an APNs request
// looks like for a decision lives in this file and payload.go.

var _ sessions.Notifier = (*Sender)(nil)

// Alerts are the texts of visible pushes; the call ones hold one %s, the
// caller's bare JID.
type Alerts struct {
	Incoming string
	Missed   string
	Message  string
}

// withDefaults fills the empty texts with DefaultConfig's.
func (a Alerts) withDefaults() Alerts {
	d := DefaultConfig().Alerts
	for _, f := range []struct {
		v *string
		d string
	}{{&a.Incoming, d.Incoming}, {&a.Missed, d.Missed}, {&a.Message, d.Message}} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	return a
}

// keepAlerts is how long APNs keeps a visible push for a device that is
// offline: a missed call or a message is still worth seeing tomorrow.
const keepAlerts = 24 * time.Hour

// Wake rings a device: a PushKit push when it has a VoIP token, an
// "Incoming call" alert otherwise. Retries go out only while the call
// still rings.
func (s *Sender) Wake(ctx context.Context, w sessions.Wake) error {
	return s.Push(ctx, s.wakeNotification(w))
}

// CallEnded tells a woken device how its call ended: a missed-call alert,
// or a background push when another device took the call. A device with
// only a VoIP token is told nothing: PushKit pushes may only announce new
// calls (iOS ends apps that send others).
func (s *Sender) CallEnded(ctx context.Context, e sessions.CallEnd) error {
	n, ok := s.endNotification(e)
	if !ok {
		s.m.skipped.WithLabelValues("call_end", "no_alert_token").Inc()
		return nil
	}
	return s.Push(ctx, n)
}

// Message sends a message alert to the device's regular token; a device
// with only a VoIP token cannot show one.
func (s *Sender) Message(ctx context.Context, m sessions.Message) error {
	n, ok := s.messageNotification(m)
	if !ok {
		s.m.skipped.WithLabelValues("message", "no_alert_token").Inc()
		return nil
	}
	return s.Push(ctx, n)
}

func (n Notification) kindLabelFor(k sessions.WakeKind) string {
	if k == sessions.WakeVoIP {
		return string(KindVoIP)
	}
	return string(KindAlert)
}

func (s *Sender) wakeNotification(w sessions.Wake) Notification {
	c, d := w.Call, w.Device
	pc := pushCall(c)
	n := Notification{
		BundleID: d.BundleID, Environment: d.Environment,
		CollapseID: pc.UUID, Expiration: c.Deadline, Deadline: c.Deadline,
		Account: c.Account, DeviceID: d.ID, CallID: c.ID,
	}
	if s.feedback != nil {
		k := w.Key()
		n.Wanted = s.wakeWanted(k)
		n.Report = s.reporter(&k, c.Key(), d.ID, n.kindLabelFor(w.Kind))
	}
	if w.Kind == sessions.WakeVoIP {
		n.Kind, n.Token = KindVoIP, d.VoIPToken
		n.Payload = VoIPPayload(c.Account, pc)
	} else {
		n.Kind, n.Token = KindAlert, d.Token
		n.Payload = CallAlertPayload(c.Account, pc, EventIncoming, fmt.Sprintf(s.alerts.Load().Incoming, c.Caller))
	}
	return n
}

func (s *Sender) endNotification(e sessions.CallEnd) (Notification, bool) {
	c, d := e.Call, e.Device
	if d.Token == "" {
		return Notification{}, false
	}
	pc := pushCall(c)
	n := Notification{
		Token: d.Token, BundleID: d.BundleID, Environment: d.Environment,
		Account: c.Account, DeviceID: d.ID, CallID: c.ID,
	}
	switch e.State {
	case sessions.EndMissed, sessions.EndCancelled:
		n.Kind = KindAlert
		n.CollapseID = pc.UUID // replaces an "Incoming call" alert
		n.Expiration = time.Now().Add(keepAlerts)
		n.Payload = CallAlertPayload(c.Account, pc, EventMissed, fmt.Sprintf(s.alerts.Load().Missed, c.Caller))
	case sessions.EndAnswered, sessions.EndDeclined, sessions.EndMigrated, sessions.EndTieBreak:
		ev := map[sessions.EndState]Event{
			sessions.EndAnswered: EventAnsweredElsewhere, sessions.EndDeclined: EventDeclinedElsewhere,
			sessions.EndMigrated: EventMigrated, sessions.EndTieBreak: EventCancelled,
		}[e.State]
		n.Kind = KindBackground
		n.Expiration = c.Deadline
		n.Deadline = c.Deadline
		n.Payload = BackgroundPayload(c.Account, pc, ev)
	default:
		return Notification{}, false
	}
	if s.feedback != nil {
		n.Report = s.reporter(nil, c.Key(), d.ID, string(n.Kind))
	}
	return n, true
}

func (s *Sender) messageNotification(m sessions.Message) (Notification, bool) {
	d := m.Device
	if d.Token == "" {
		return Notification{}, false
	}
	return Notification{
		Kind: KindAlert, Token: d.Token, BundleID: d.BundleID, Environment: d.Environment,
		Expiration: time.Now().Add(keepAlerts),
		Payload:    MessagePayload(m.Account, m.Sender, m.Body, s.alerts.Load().Message),
		Account:    m.Account, DeviceID: d.ID,
	}, true
}

// wakeWanted is a wake's Notification.Wanted: a retry (or a backlog) goes
// out only while the call rings and the wake is still ours. When sessions
// cannot tell (Redis down), it does (the ring deadline still bounds it): a
// rare late push beats a missed call.
func (s *Sender) wakeWanted(k sessions.WakeKey) func(context.Context) bool {
	return func(ctx context.Context) bool {
		ok, err := s.feedback.WakeWanted(ctx, k)
		if err != nil {
			s.log.Warn("could not tell whether a call still rings; sending its push", "account", k.Call.Account, "caller", k.Call.Caller, "call_id", k.Call.ID, "error", err)
			return true
		}
		return ok
	}
}

// reporter is a push's Notification.Report: each attempt goes back to
// sessions (the call's trace; a wake's end).
func (s *Sender) reporter(wake *sessions.WakeKey, call sessions.CallKey, deviceID, kind string) func(Attempt) {
	return func(a Attempt) {
		s.feedback.Pushed(sessions.PushReport{Wake: wake, Call: call, DeviceID: deviceID, Kind: kind,
			Result: a.Result, Status: a.Status, Latency: a.Latency, Attempts: a.Attempts, Final: a.Final})
	}
}

// pushCall is what the pushes of a call tell the app of it.
func pushCall(c sessions.Call) Call {
	return Call{
		ID: c.ID, UUID: CallUUID(c.Caller, c.ID), From: c.From, Caller: c.Caller,
		Media: c.Media, SentAt: c.Created, ExpiresAt: c.Deadline,
	}
}
