package jingle

import (
	"encoding/xml"
	"slices"
	"time"

	"mellium.im/xmpp/jid"
)

// Action is the call signal a CallEvent carries: the XEP-0353 element name,
// the JMI equivalent of a XEP-0166 action, or a XEP-0482 call invite signal.
type Action string

// Call signals.
const (
	ActionPropose Action = "propose"
	ActionRetract Action = "retract"
	ActionAccept  Action = "accept"
	ActionProceed Action = "proceed"
	ActionReject  Action = "reject"
	ActionFinish  Action = "finish"
	ActionRinging Action = "ringing" // JMI <ringing/> (XEP-0353 0.7) and Jingle session-info ringing: parsed, usually ignored

	// XEP-0482 call invites, for counting: none of them is a JMI call, and
	// none may ring a phone.
	ActionInvite        Action = "invite"
	ActionInviteRetract Action = "invite-retract"
	ActionInviteAccept  Action = "invite-accept"
	ActionInviteReject  Action = "invite-reject"
	ActionInviteLeft    Action = "invite-left"
)

func jmiAction(local string) (Action, bool) {
	switch a := Action(local); a {
	case ActionPropose, ActionRetract, ActionAccept, ActionProceed, ActionReject, ActionFinish, ActionRinging:
		return a, true
	}
	return "", false
}

// signalAction returns the Action of a XEP-0353 or XEP-0482 element.
func signalAction(name xml.Name) (Action, bool) {
	if name.Space == NSJingleMessage {
		return jmiAction(name.Local)
	}
	switch name.Local {
	case "invite":
		return ActionInvite, true
	case "retract":
		return ActionInviteRetract, true
	case "accept":
		return ActionInviteAccept, true
	case "reject":
		return ActionInviteReject, true
	case "left":
		return ActionInviteLeft, true
	}
	return "", false
}

// Carbon says that a call signal came as a XEP-0280 carbon copy, and which
// kind.
type Carbon string

// Carbon kinds.
const (
	CarbonSent     Carbon = "sent"     // a copy of a message the account sent from another of its resources
	CarbonReceived Carbon = "received" // a copy of a message one of the account's other resources received
)

// CallEvent is one call signal taken out of a forwarded copy.
type CallEvent struct {
	Action   Action
	ID       string    // JMI id, Jingle sid, or the id an invite signal names (see ParseCall)
	From     jid.JID   // sender of the message or iq that carries the signal (full JID when the server gave one)
	To       jid.JID   // addressee of that message or iq
	Media    []string  // propose / session-initiate: media of each RTP <description> ("audio", "video"), deduplicated, in order
	Reason   string    // the <reason/> child's condition element name if any ("decline", "busy", "success", "expired", ...); "" when absent, which XEP-0353 0.7 allows
	Delay    time.Time // the oldest XEP-0203 <delay/> stamp (or legacy jabber:x:delay) on any message or <forwarded/> on the way in, UTC; zero when absent
	Wrapper  Wrapper   // the outer <message> attributes
	Jingle   bool      // the event came from a XEP-0166 IQ rather than a message
	StanzaID string    // the id attribute of the message or iq that carries the signal

	// MessageType is the type attribute of the message that carries the
	// signal, as written: "chat" (what XEP-0353 prescribes), "normal",
	// "groupchat", "headline", or "" when absent (RFC 6121: normal). A
	// groupchat or headline JMI must never ring. "" for a Jingle IQ; never
	// "error": bounces are ErrNotCall.
	MessageType string
	// MigratedTo is, on a finish, the id of the session the call moved to
	// (XEP-0353 <migrated to=…/>: a device switch or resumption, not a hang-up).
	MigratedTo string
	// TieBreak is set on a reject or retract carrying XEP-0353 <tie-break/>:
	// it settles two crossing proposes and says nothing about the user.
	TieBreak bool
	// Carbon is set when the signal came inside a genuine XEP-0280 carbon
	// copy that the account CarbonOf's server made for another of its
	// resources: From and To are still those of the copied message (sent:
	// From is one of the account's resources; received: To is the account
	// or one of its resources). Spoofed carbons are ErrNotCall.
	Carbon   Carbon
	CarbonOf jid.JID // the account (bare JID) whose carbon this is; zero without Carbon
}

// Wrapper holds the attributes of the top-level <message> that carried the
// forwarded copy: From is the server's host, To the component (or
// undeliverable@ the component).
type Wrapper struct {
	From, To jid.JID
	ID       string
}

// UndeliverableLocalpart is the localpart the Prosody firewall rules address
// a copy to when the server could not deliver the stanza live (the offline
// and hibernated chains).
const UndeliverableLocalpart = "undeliverable"

// Undeliverable reports whether the wrapper was addressed to
// undeliverable@<component>: the server could not deliver live.
func (e CallEvent) Undeliverable() bool {
	return e.Wrapper.To.Localpart() == UndeliverableLocalpart
}

// ParseCall parses a top-level <message> whose direct child <forwarded
// xmlns='urn:xmpp:forward:0'> holds, as its first stanza:
//
//   - a <message> with a call signal as a direct child: a XEP-0353 element
//     (propose, retract, accept, proceed, reject, finish, ringing; each needs
//     an id) or a XEP-0482 one (invite, retract, accept, reject, left:
//     ActionInvite…; an invite's id is its own id attribute, else the
//     message's, as XEP-0482 has no id of its own);
//   - the same message inside a XEP-0280 carbon (<sent/> or <received/>,
//     then <forwarded/>), reported with Carbon and CarbonOf;
//   - an <iq type='set'> with a XEP-0166 <jingle action=… sid=…/>. Jingle
//     actions map to JMI ones: session-initiate → propose (media from
//     content/description@media), session-accept → proceed,
//     session-terminate → finish (Reason from <reason/>), session-info with
//     an RTP <ringing/> → ringing; the others are ErrNotCall.
//
// Also ErrNotCall: a signal anywhere else (a MAM result, a nested
// extension), a bounced (type='error') copy, a carbon that is not the
// account's server's own copy (XEP-0280 section 11: its from must be the
// bare JID its to belongs to, and the copied message must be the account's),
// and any input Classify does not call KindCall (checked first, so that the
// component's filter and this parser never disagree).
//
// The inner stanza and the wrapper need valid from and to JIDs (a message
// from an account without to is to that account's bare JID); missing ids,
// an id or sid over 256 bytes, more than 16 descriptions, and absurdly long
// attributes are ErrMalformed.
func ParseCall(raw []byte) (CallEvent, error) {
	if Classify(raw) != KindCall {
		return CallEvent{}, notCall("no forwarded Jingle payload")
	}
	var s scanner
	s.init(raw)
	var root, child tag
	if !s.root(&root) {
		return CallEvent{}, s.err
	}
	if !isStanza(root.name, "message", true) || root.attr("type") == "error" {
		return CallEvent{}, notCall("not a forwarding message")
	}
	var c call
	seen := false
	for s.next(&child) {
		if !seen && is(child.name, NSForward, "forwarded") {
			seen = true
			c.forwarded(&s, true)
		} else {
			s.skip()
		}
	}
	if err := s.finish(); err != nil {
		return CallEvent{}, err
	}
	return c.event(&root)
}

// call collects a CallEvent while the forwarded copy is read.
type call struct {
	ev       CallEvent
	inner    string // the name of the stanza that carries the signal: "message" or "iq"
	from, to string // of the message or iq that carries the signal
	delay    time.Time
	// The carbon wrapper: the forwarded message that holds <sent/> or
	// <received/>.
	carbon               Carbon
	carbonFrom, carbonTo string
}

// forwarded reads <forwarded/>: delays and the forwarded stanza, its first
// stanza child. Inside a carbon (outer false) only a message counts.
func (c *call) forwarded(s *scanner, outer bool) {
	var child tag
	seen := false
	for s.next(&child) {
		switch {
		case isDelay(child.name):
			c.delay = earliest(c.delay, readDelay(s, &child))
		case seen:
			s.skip()
		case isStanza(child.name, "message", false):
			seen, c.inner = true, "message"
			c.message(s, &child, outer)
		case outer && isStanza(child.name, "iq", false):
			seen, c.inner = true, "iq"
			c.iq(s, &child)
		case isStanza(child.name, "presence", false):
			seen = true
			s.skip()
		default:
			s.skip()
		}
	}
}

// message reads a forwarded <message/>: the call signal must be a direct
// child. The outer one may instead be a carbon wrapper.
func (c *call) message(s *scanner, start *tag, outer bool) {
	var child tag
	carbon := false
	originID := ""
	for s.next(&child) {
		name := child.name
		switch {
		case isDelay(name):
			c.delay = earliest(c.delay, readDelay(s, &child))
		case name.Space == NSJingleMessage || name.Space == NSCallInvites:
			action, ok := signalAction(name)
			switch {
			case !ok || c.ev.Action != "" && !carbon:
				s.skip() // not a signal, or not the first
			case carbon:
				s.fail(notCall("a carbon wrapper that carries a call signal of its own"))
				return
			case name.Space == NSJingleMessage:
				c.jmi(s, &child, action)
			default:
				c.invite(s, &child, action)
			}
		case outer && !carbon && name.Space == NSCarbons && (name.Local == "sent" || name.Local == "received"):
			if c.ev.Action != "" {
				s.fail(notCall("a carbon wrapper that carries a call signal of its own"))
				return
			}
			carbon = true
			c.carbon = Carbon(name.Local)
			c.carbonCopy(s)
		case is(name, NSStanzaID, "origin-id"):
			originID = child.attr("id")
			s.skip()
		default:
			s.skip()
		}
	}
	if carbon {
		if start.attr("type") == "error" {
			s.fail(notCall("bounced carbon"))
		}
		c.carbonFrom, c.carbonTo = start.attr("from"), start.attr("to")
		return
	}
	if c.ev.Action == "" {
		return
	}
	if start.attr("type") == "error" {
		s.fail(notCall("bounced %s", c.ev.Action))
		return
	}
	if c.ev.Action == ActionInvite && c.ev.ID == "" {
		// XEP-0482, "Using the correct ID": an invite is known by its
		// message's origin-id, else its id.
		if c.ev.ID = originID; c.ev.ID == "" {
			c.ev.ID = start.attr("id")
		}
		c.checkID("invite", "id", c.ev.ID, s)
	}
	c.stanza(start)
	c.ev.MessageType = start.attr("type")
}

// carbonCopy reads a carbon's <sent/> or <received/>: the copy is its
// first <forwarded/>.
func (c *call) carbonCopy(s *scanner) {
	var child tag
	seen := false
	for s.next(&child) {
		if !seen && is(child.name, NSForward, "forwarded") {
			seen = true
			c.forwarded(s, false)
		} else {
			s.skip()
		}
	}
}

func (c *call) stanza(start *tag) {
	c.from = start.attr("from")
	c.to = start.attr("to")
	c.ev.StanzaID = start.attr("id")
}

// checkID fails the walk unless id is a good value for elem's attribute
// name.
func (c *call) checkID(elem, name, id string, s *scanner) {
	if _, err := callID(elem, name, id); err != nil {
		s.fail(err)
	}
}

// jmi reads one XEP-0353 element.
func (c *call) jmi(s *scanner, start *tag, action Action) {
	c.ev.Action, c.ev.ID = action, start.attr("id")
	c.checkID(start.name.Local, "id", c.ev.ID, s)
	descriptions := 0
	migrated, tieBreak := "", false
	var child tag
	for s.next(&child) {
		switch {
		case child.name.Local == "description":
			if err := c.addDescription(child.name, child.attr("media"), &descriptions); err != nil {
				s.fail(err)
			}
			s.skip()
		case is(child.name, NSJingle, "reason"):
			c.ev.Reason = reason(s)
		case is(child.name, NSJingleMessage, "migrated"):
			migrated = child.attr("to")
			c.checkID("migrated", "to", migrated, s)
			s.skip()
		case is(child.name, NSJingleMessage, "tie-break"):
			tieBreak = true
			s.skip()
		default:
			s.skip()
		}
	}
	// Each child means something only where XEP-0353 puts it.
	switch action {
	case ActionPropose:
	case ActionFinish:
		c.ev.MigratedTo = migrated
		c.ev.Media = nil
	case ActionReject, ActionRetract:
		c.ev.TieBreak = tieBreak
		c.ev.Media = nil
	default:
		c.ev.Media = nil
	}
}

// invite reads one XEP-0482 element. Only the answers carry an id: an
// invite's comes from its message (see message), unless it has one itself
// as Dino writes.
func (c *call) invite(s *scanner, start *tag, action Action) {
	c.ev.Action, c.ev.ID = action, start.attr("id")
	if action != ActionInvite {
		c.checkID(start.name.Local, "id", c.ev.ID, s)
	} else if c.ev.ID != "" {
		c.checkID("invite", "id", c.ev.ID, s)
	}
	s.skip()
}

// iq reads the forwarded <iq/>: only a set carrying <jingle/> is a call.
func (c *call) iq(s *scanner, start *tag) {
	var child tag
	for s.next(&child) {
		if !is(child.name, NSJingle, "jingle") || c.ev.Action != "" {
			s.skip()
			continue
		}
		if typ := start.attr("type"); typ != "set" {
			s.fail(notCall("jingle in an iq of type %q", short(typ)))
			return
		}
		c.jingle(s, &child)
	}
	c.stanza(start)
}

// jingle reads a XEP-0166 <jingle/> and maps its action to a JMI one.
func (c *call) jingle(s *scanner, start *tag) {
	var action Action
	switch a := start.attr("action"); a {
	case "session-initiate":
		action = ActionPropose
	case "session-accept":
		action = ActionProceed
	case "session-terminate":
		action = ActionFinish
	case "session-info":
		// Ringing only if it carries <ringing/>: decided below.
	case "":
		s.fail(malformed("jingle without action"))
		return
	default:
		s.fail(notCall("jingle action %q", short(a)))
		return
	}
	sid := start.attr("sid")
	c.checkID(start.name.Local, "sid", sid, s)
	contents, descriptions, ringing := 0, 0, false
	var child tag
	for s.next(&child) {
		switch {
		case is(child.name, NSJingle, "content"):
			if contents++; contents > maxDescriptions {
				s.fail(malformed("more than %d contents", maxDescriptions))
			}
			c.content(s, &descriptions)
		case is(child.name, NSJingle, "reason"):
			c.ev.Reason = reason(s)
		case is(child.name, NSRTPInfo, "ringing"):
			ringing = true
			s.skip()
		default:
			s.skip()
		}
	}
	if action == "" {
		if !ringing {
			s.fail(notCall("jingle session-info without ringing"))
			return
		}
		action = ActionRinging
	}
	c.ev.Action, c.ev.ID, c.ev.Jingle = action, sid, true
	if action != ActionPropose {
		c.ev.Media = nil
	}
}

// content reads a Jingle <content/> for its description.
func (c *call) content(s *scanner, descriptions *int) {
	var child tag
	for s.next(&child) {
		if child.name.Local == "description" {
			if err := c.addDescription(child.name, child.attr("media"), descriptions); err != nil {
				s.fail(err)
			}
		}
		s.skip()
	}
}

// addDescription counts a <description/> of any application and keeps the
// media m of an RTP one.
func (c *call) addDescription(name xml.Name, m string, n *int) error {
	if *n++; *n > maxDescriptions {
		return malformed("more than %d descriptions", maxDescriptions)
	}
	if name.Space == NSRTP && m != "" {
		if !isToken(m, maxMediaLen) {
			return malformed("media %q", short(m))
		}
		if !slices.Contains(c.ev.Media, m) {
			c.ev.Media = append(c.ev.Media, m)
		}
	}
	return nil
}

// reason reads a Jingle <reason/> and returns its condition's name: the
// first child in the Jingle namespace that is not <text/>.
func reason(s *scanner) string {
	var cond string
	var child tag
	for s.next(&child) {
		if cond == "" && child.name.Space == NSJingle && child.name.Local != "text" {
			if cond = child.name.Local; len(cond) > maxReasonLen {
				s.fail(malformed("reason <%s/>", short(cond)))
			}
		}
		s.skip()
	}
	return cond
}

// event completes the CallEvent once the whole stanza has been read; root
// is the wrapper.
func (c *call) event(root *tag) (CallEvent, error) {
	if c.ev.Action == "" {
		return CallEvent{}, notCall("no call signal in the forwarded copy")
	}
	// Addresses are checked only now, so that a forwarded chat message with
	// odd addresses is "not a call" rather than "malformed".
	var err error
	ev := c.ev
	if ev.Wrapper.From, err = parseJID("wrapper from", root.attr("from")); err != nil {
		return CallEvent{}, err
	}
	if ev.Wrapper.To, err = parseJID("wrapper to", root.attr("to")); err != nil {
		return CallEvent{}, err
	}
	ev.Wrapper.ID = root.attr("id")
	// Only a message or an iq carries a call signal. Constant labels, since
	// concatenating them would cost two allocations a call.
	from, to := "from of the forwarded message", "to of the forwarded message"
	if c.inner == "iq" {
		from, to = "from of the forwarded iq", "to of the forwarded iq"
	}
	if ev.From, err = parseJID(from, c.from); err != nil {
		return CallEvent{}, err
	}
	if c.to == "" && c.inner == "message" && ev.From.Localpart() != "" {
		// A message without to is for its sender's own account (RFC 6120
		// section 10.3.1). Prosody removes the to of a message a client sends
		// to its own bare JID, as a device's XEP-0353 <accept/> is.
		ev.To = ev.From.Bare()
	} else if ev.To, err = parseJID(to, c.to); err != nil {
		return CallEvent{}, err
	}
	if c.carbon != "" {
		if ev.CarbonOf, err = c.carbonAccount(ev.From, ev.To); err != nil {
			return CallEvent{}, err
		}
		ev.Carbon = c.carbon
	}
	ev.Delay = c.delay
	return ev, nil
}

// carbonAccount checks that the carbon wrapper is the account's server's
// own copy (XEP-0280 section 11: anyone can send a message holding a
// <received/>) and returns the account. from and to are the copied
// message's.
func (c *call) carbonAccount(from, to jid.JID) (jid.JID, error) {
	account, err := jid.Parse(c.carbonFrom)
	if err != nil || account.Localpart() == "" || account.Resourcepart() != "" {
		return jid.JID{}, notCall("carbon from %q: not an account's bare JID, so not its server's copy", short(c.carbonFrom))
	}
	if dest, err := jid.Parse(c.carbonTo); err != nil || !dest.Bare().Equal(account) {
		return jid.JID{}, notCall("carbon from %s to %q: a server copies only to the account's own resources", account, short(c.carbonTo))
	}
	copied := to
	if c.carbon == CarbonSent {
		copied = from
	}
	if !copied.Bare().Equal(account) {
		return jid.JID{}, notCall("%s carbon of %s's message to %s: not a message of the account %s", c.carbon, from, to, account)
	}
	return account, nil
}

// callID checks a required, bounded id attribute (the JMI id or Jingle sid):
// the value id of the attribute name of the element elem.
func callID(elem, name, id string) (string, error) {
	switch {
	case id == "":
		return "", malformed("<%s/> without %s", elem, name)
	case len(id) > maxIDLen:
		return "", malformed("<%s/> %s is %d bytes long", elem, name, len(id))
	}
	return id, nil
}

// isToken reports whether s is a short name made of letters, digits, '-',
// '_' and '.'.
func isToken(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
