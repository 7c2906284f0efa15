package sessions

import (
	"context"
	"crypto/subtle"
	"errors"

	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
)

// pendingMessage is a message alert held for calls.publish_hold.
type pendingMessage struct {
	At     int64  `json:"at"`
	Sender string `json:"sender,omitempty"`
	Body   string `json:"body,omitempty"`
	// LastCall is the account's lastcall key when the publish was recorded
	// ("" when absent): a call started after the publish changes it, and
	// the publish then belonged to that call (message_due.lua). Comparing
	// Redis states, not clocks: the propose's time is taken on another
	// worker and may fall before the publish's.
	LastCall string `json:"lastcall"`
}

// Publish handles a XEP-0357 publish from server: it must name a registered
// node of one of that server's users and carry the node's secret. It wakes
// the device for a ringing call, or becomes a message alert. Errors: an
// *InputError wrapping ErrUnknownNode or ErrForbidden, or a Redis error.
func (s *Service) Publish(ctx context.Context, server jid.JID, pub jingle.Publish) error {
	account, d, err := s.store.deviceByNode(ctx, pub.Node)
	if errors.Is(err, ErrUnknownNode) {
		s.m.publishes.WithLabelValues("unknown_node").Inc()
		return inputErr(ErrUnknownNode, "node", "no push registration has node %q", pub.Node)
	}
	if err != nil {
		return err
	}
	acct, _ := jid.Parse(account)
	if server.Localpart() != "" || server.Domainpart() != acct.Domainpart() {
		s.m.publishes.WithLabelValues("forbidden").Inc()
		return inputErr(ErrForbidden, "", "%s may not publish for %s", server, account)
	}
	if subtle.ConstantTimeCompare([]byte(pub.Options.Get("secret")), []byte(d.Secret)) != 1 {
		s.m.publishes.WithLabelValues("bad_secret").Inc()
		return inputErr(ErrForbidden, "secret", "wrong secret for node %q", pub.Node)
	}

	now := s.cfg.Now()
	// A publish that Prosody 13 marks as a call (Tigase's encrypted type='voip')
	// counts as condition 3 even where wake_on_publish is off.
	wakeOK := s.cfg.WakeOnPublish || pub.VoIP
	// Only a publish with a body, a sender or an encrypted payload is about a
	// message. ejabberd publishes an empty <notification/> for every stanza
	// that reaches a hibernated session (presences, receipts, chat states)
	// and for the unacknowledged stanzas of a session going into
	// hibernation; Prosody one without a body for a chat state. Such a
	// publish still counts for a call (condition 3), but is never held as
	// a message and never becomes an alert.
	message := pub.Summary.Body != "" || pub.Summary.Sender != "" || pub.Encrypted
	t := s.t
	if !message {
		t.hold = 0
	}
	res, err := s.store.publish(ctx, account, d, now, t, wakeOK, pendingMessage{At: ms(now), Sender: pub.Summary.Sender, Body: pub.Summary.Body})
	if err != nil {
		return err
	}
	status := res.status
	if status == statusMessage && !message {
		status = "empty"
	}
	s.m.publishes.WithLabelValues(status).Inc()
	switch status {
	case statusGone:
		return inputErr(ErrUnknownNode, "node", "no push registration has node %q", pub.Node)
	case statusCall:
		for _, w := range res.wakes {
			s.wake(ctx, Wake{Call: w.call, Device: d, Kind: w.kind, Why: WhyPublish})
		}
	case statusHold:
		if res.holdStarted {
			if err := s.store.addTimer(ctx, timerMember(timerMessage, account, d.ID), now.Add(s.cfg.PublishHold)); err != nil {
				return err
			}
		}
	case statusMessage:
		s.sendMessage(ctx, account, res.device, pendingMessage{Sender: pub.Summary.Sender, Body: pub.Summary.Body})
	}
	return nil
}

func (s *Service) sendMessage(ctx context.Context, account string, d Device, m pendingMessage) {
	_ = s.notified(s.notify.Message(ctx, Message{Account: account, Device: d, Sender: m.Sender, Body: m.Body}), "message", account, d.ID, "")
}
