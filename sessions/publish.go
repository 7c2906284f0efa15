package sessions

import (
	"context"
	"encoding/json"

	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
)

// heldMessage is a message alert held for calls.publish_hold.
type heldMessage struct {
	Sender string `json:"sender,omitempty"`
	Body   string `json:"body,omitempty"`
}

// Publish handles a XEP-0357 publish from server: it must name a registered
// node of one of that server's users and carry the node's secret. It wakes
// the device for a call that started with it, or becomes a message alert.
// Errors: an *InputError wrapping ErrUnknownNode or ErrForbidden, or a
// Redis error.
func (s *Service) Publish(ctx context.Context, server jid.JID, pub jingle.Publish) error {
	account, random, ok := parseNode(pub.Node)
	acct, err := jid.Parse(account)
	if !ok || err != nil || acct.Localpart() == "" || !s.Serves(acct) {
		s.m.publishes.WithLabelValues("unknown_node").Inc()
		return inputErr(ErrUnknownNode, "node", "no push registration has node %q", pub.Node)
	}
	if server.Localpart() != "" || server.Resourcepart() != "" || server.Domainpart() != acct.Domainpart() {
		s.m.publishes.WithLabelValues("forbidden").Inc()
		return inputErr(ErrForbidden, "", "%s may not publish for %s", server, account)
	}

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
	hold := s.cfg.PublishHold
	if !message {
		hold = 0
	}
	held, _ := json.Marshal(heldMessage{Sender: pub.Summary.Sender, Body: pub.Summary.Body})
	attempt := newAttempt()
	res, err := s.store.publish(ctx, account, random, pub.Secret(), wakeOK, hold, string(held), attempt)
	if err != nil {
		return err
	}
	s.outage.answered(s)
	status := res.status
	if status == statusMessage && !message {
		status = "empty"
	}
	switch status {
	case statusGone:
		s.m.publishes.WithLabelValues("unknown_node").Inc()
		return inputErr(ErrUnknownNode, "node", "no push registration has node %q", pub.Node)
	case statusForbidden:
		s.m.publishes.WithLabelValues("bad_secret").Inc()
		return inputErr(ErrForbidden, "secret", "wrong secret for node %q", pub.Node)
	case statusCall:
		for _, w := range res.wakes {
			s.wake(ctx, Wake{Call: w.call, Device: res.device, Kind: w.kind, Why: WhyPublish, Attempt: attempt})
		}
	case statusMessage:
		s.sendMessage(ctx, account, res.device, heldMessage{Sender: pub.Summary.Sender, Body: pub.Summary.Body})
	}
	s.m.publishes.WithLabelValues(status).Inc()
	return nil
}

func (s *Service) sendMessage(ctx context.Context, account string, d Device, m heldMessage) {
	_ = s.notified(s.notify.Message(ctx, Message{Account: account, Device: d, Sender: m.Sender, Body: m.Body}), "message", account, d.ID, "")
}
