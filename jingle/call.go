package jingle

import (
	"encoding/xml"
	"slices"
	"time"

	"mellium.im/xmpp/jid"
)

// Action is the call signal a CallEvent carries: the XEP-0353 element name,
// or the JMI equivalent of a XEP-0166 action.
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
)

func jmiAction(local string) (Action, bool) {
	switch a := Action(local); a {
	case ActionPropose, ActionRetract, ActionAccept, ActionProceed, ActionReject, ActionFinish, ActionRinging:
		return a, true
	}
	return "", false
}

// CallEvent is one call signal taken out of a forwarded copy.
type CallEvent struct {
	Action   Action
	ID       string    // JMI id, or the Jingle sid
	From     jid.JID   // sender of the inner stanza (full JID when the server gave one)
	To       jid.JID   // addressee of the inner stanza
	Media    []string  // propose / session-initiate: media of each RTP <description> ("audio", "video"), deduplicated, in order
	Reason   string    // the <reason/> child's condition element name if any ("decline", "busy", "success", "cancel", ...)
	Delay    time.Time // the oldest XEP-0203 <delay/> stamp (or legacy jabber:x:delay) on the inner stanza or its <forwarded/>, UTC; zero when absent
	Wrapper  Wrapper   // the outer <message> attributes
	Jingle   bool      // the event came from a XEP-0166 IQ rather than a message
	StanzaID string    // the inner stanza's id attribute
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
// xmlns='urn:xmpp:forward:0'> holds either an inner <message> with a XEP-0353
// element as a direct child (propose, retract, accept, proceed, reject,
// finish, ringing; each needs an id), or an inner <iq type='set'> with a
// XEP-0166 <jingle action=… sid=…/>. Jingle actions map to JMI ones:
// session-initiate → propose (media from content/description@media),
// session-accept → proceed, session-terminate → finish (Reason from
// <reason/>), session-info with an RTP <ringing/> → ringing; the others are
// ErrNotCall. So are a JMI element anywhere else (a carbon, a MAM result), a
// bounced (type='error') copy, and any input Classify does not call KindCall
// (checked first, so that the component's filter and this parser never
// disagree, e.g. over a namespace spelled with character references).
//
// The inner stanza and the wrapper need valid from and to JIDs; missing ids,
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
			c.forwarded(&s)
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
	inner    string // the forwarded stanza's name: "message", "iq", "presence"
	from, to string
	delay    time.Time // the oldest on the inner stanza and its <forwarded/>
}

// forwarded reads <forwarded/>: delays and the forwarded stanza, its first
// stanza child.
func (c *call) forwarded(s *scanner) {
	var child tag
	for s.next(&child) {
		switch {
		case isDelay(child.name):
			c.delay = earliest(c.delay, readDelay(s, &child))
		case c.inner == "" && isStanza(child.name, "message", false):
			c.inner = "message"
			c.message(s, &child)
		case c.inner == "" && isStanza(child.name, "iq", false):
			c.inner = "iq"
			c.iq(s, &child)
		case c.inner == "" && isStanza(child.name, "presence", false):
			c.inner = "presence"
			s.skip()
		default:
			s.skip()
		}
	}
}

// message reads the forwarded <message/>: the JMI element must be a direct
// child.
func (c *call) message(s *scanner, start *tag) {
	var child tag
	for s.next(&child) {
		action, isJMI := jmiAction(child.name.Local)
		switch {
		case isJMI && child.name.Space == NSJingleMessage && c.ev.Action == "":
			c.jmi(s, &child, action)
		case isDelay(child.name):
			c.delay = earliest(c.delay, readDelay(s, &child))
		default:
			s.skip()
		}
	}
	if c.ev.Action != "" && start.attr("type") == "error" {
		s.fail(notCall("bounced %s", c.ev.Action))
		return
	}
	c.stanza(start)
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
		default:
			s.skip()
		}
	}
	if action != ActionPropose {
		c.ev.Media = nil
	}
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
	if ev.To, err = parseJID(to, c.to); err != nil {
		return CallEvent{}, err
	}
	ev.Delay = c.delay
	return ev, nil
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
