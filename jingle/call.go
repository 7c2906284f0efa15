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
	Jingle   bool      // the event came from a XEP-0166 IQ rather than XEP-0353
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
	if ev, ok := parseCallFast(raw); ok {
		return ev, nil
	}
	return parseCallSlow(raw)
}

// parseCallSlow is ParseCall with encoding/xml: it decides everything the
// fast path leaves to it, and is the reference the fast path is tested
// against.
func parseCallSlow(raw []byte) (CallEvent, error) {
	r := newReader(raw)
	root, err := r.root()
	if err != nil {
		return CallEvent{}, err
	}
	if !isStanza(root.Name, "message", true) || attr(root, "type") == "error" {
		return CallEvent{}, notCall("not a forwarding message")
	}
	var c call
	seen := false
	err = r.each(func(child xml.StartElement) error {
		if !seen && is(child, NSForward, "forwarded") {
			seen = true
			return c.forwarded(r)
		}
		return r.skip()
	})
	if err == nil {
		err = r.finish()
	}
	if err != nil {
		return CallEvent{}, err
	}
	return c.event(root)
}

// event completes the CallEvent once the whole stanza has been read; root
// is the wrapper.
func (c *call) event(root xml.StartElement) (CallEvent, error) {
	if c.ev.Action == "" {
		return CallEvent{}, notCall("no call signal in the forwarded copy")
	}
	// Addresses are checked only now, so that a forwarded chat message with
	// odd addresses is "not a call" rather than "malformed".
	var err error
	ev := c.ev
	if ev.Wrapper.From, err = parseJID("wrapper from", attr(root, "from")); err != nil {
		return CallEvent{}, err
	}
	if ev.Wrapper.To, err = parseJID("wrapper to", attr(root, "to")); err != nil {
		return CallEvent{}, err
	}
	ev.Wrapper.ID = attr(root, "id")
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
	ev.Delay = earliest(c.innerDelay, c.forwardDelay)
	return ev, nil
}

// call collects a CallEvent while the forwarded copy is read.
type call struct {
	ev           CallEvent
	inner        string // the forwarded stanza's name: "message", "iq", "presence"
	from, to     string
	innerDelay   time.Time
	forwardDelay time.Time
}

// forwarded reads <forwarded/>: an optional delay and the forwarded stanza,
// the first stanza child.
func (c *call) forwarded(r *reader) error {
	return r.each(func(child xml.StartElement) error {
		switch {
		case isDelay(child):
			t, err := r.delay(child)
			c.forwardDelay = earliest(c.forwardDelay, t)
			return err
		case c.inner == "" && isStanza(child.Name, "message", false):
			c.inner = "message"
			return c.message(r, child)
		case c.inner == "" && isStanza(child.Name, "iq", false):
			c.inner = "iq"
			return c.iq(r, child)
		case c.inner == "" && isStanza(child.Name, "presence", false):
			c.inner = "presence"
		}
		return r.skip()
	})
}

// message reads the forwarded <message/>: the JMI element must be a direct
// child.
func (c *call) message(r *reader, start xml.StartElement) error {
	err := r.each(func(child xml.StartElement) error {
		action, isJMI := jmiAction(child.Name.Local)
		switch {
		case isJMI && child.Name.Space == NSJingleMessage && c.ev.Action == "":
			return c.jmi(r, child, action)
		case isDelay(child):
			t, err := r.delay(child)
			c.innerDelay = earliest(c.innerDelay, t)
			return err
		}
		return r.skip()
	})
	if err != nil {
		return err
	}
	if c.ev.Action != "" && attr(start, "type") == "error" {
		return notCall("bounced %s", c.ev.Action)
	}
	c.stanza(start)
	return nil
}

func (c *call) stanza(start xml.StartElement) {
	c.from = attr(start, "from")
	c.to = attr(start, "to")
	c.ev.StanzaID = attr(start, "id")
}

// jmi reads one XEP-0353 element.
func (c *call) jmi(r *reader, start xml.StartElement, action Action) error {
	id, err := callID(start.Name.Local, "id", attr(start, "id"))
	if err != nil {
		return err
	}
	c.ev.Action, c.ev.ID = action, id
	descriptions := 0
	err = r.each(func(child xml.StartElement) (err error) {
		switch {
		case child.Name.Local == "description":
			return c.description(r, child, &descriptions)
		case is(child, NSJingle, "reason"):
			c.ev.Reason, err = reason(r)
			return err
		}
		return r.skip()
	})
	if err != nil {
		return err
	}
	if action != ActionPropose {
		c.ev.Media = nil
	}
	return nil
}

// iq reads the forwarded <iq/>: only a set carrying <jingle/> is a call.
func (c *call) iq(r *reader, start xml.StartElement) error {
	err := r.each(func(child xml.StartElement) error {
		if !is(child, NSJingle, "jingle") || c.ev.Action != "" {
			return r.skip()
		}
		if typ := attr(start, "type"); typ != "set" {
			return notCall("jingle in an iq of type %q", short(typ))
		}
		return c.jingle(r, child)
	})
	if err != nil {
		return err
	}
	c.stanza(start)
	return nil
}

// jingle reads a XEP-0166 <jingle/> and maps its action to a JMI one.
func (c *call) jingle(r *reader, start xml.StartElement) error {
	var action Action
	switch a := attr(start, "action"); a {
	case "session-initiate":
		action = ActionPropose
	case "session-accept":
		action = ActionProceed
	case "session-terminate":
		action = ActionFinish
	case "session-info":
		// Ringing only if it carries <ringing/>: decided below.
	case "":
		return malformed("jingle without action")
	default:
		return notCall("jingle action %q", short(a))
	}
	sid, err := callID(start.Name.Local, "sid", attr(start, "sid"))
	if err != nil {
		return err
	}
	contents, descriptions, ringing := 0, 0, false
	err = r.each(func(child xml.StartElement) (err error) {
		switch {
		case is(child, NSJingle, "content"):
			if contents++; contents > maxDescriptions {
				return malformed("more than %d contents", maxDescriptions)
			}
			return c.content(r, &descriptions)
		case is(child, NSJingle, "reason"):
			c.ev.Reason, err = reason(r)
			return err
		case is(child, NSRTPInfo, "ringing"):
			ringing = true
		}
		return r.skip()
	})
	if err != nil {
		return err
	}
	if action == "" {
		if !ringing {
			return notCall("jingle session-info without ringing")
		}
		action = ActionRinging
	}
	c.ev.Action, c.ev.ID, c.ev.Jingle = action, sid, true
	if action != ActionPropose {
		c.ev.Media = nil
	}
	return nil
}

// content reads a Jingle <content/> for its description.
func (c *call) content(r *reader, descriptions *int) error {
	return r.each(func(child xml.StartElement) error {
		if child.Name.Local == "description" {
			return c.description(r, child, descriptions)
		}
		return r.skip()
	})
}

// description reads a <description/>.
func (c *call) description(r *reader, start xml.StartElement, n *int) error {
	if err := c.addDescription(start.Name, attr(start, "media"), n); err != nil {
		return err
	}
	return r.skip()
}

// addDescription counts a <description/> of any application and keeps the
// media m of an RTP one.
func (c *call) addDescription(name xml.Name, m string, n *int) error {
	if *n++; *n > maxDescriptions {
		return malformed("more than %d descriptions", maxDescriptions)
	}
	if name.Space == NSRTP {
		if m != "" {
			if !isToken(m, maxMediaLen) {
				return malformed("media %q", short(m))
			}
			if !slices.Contains(c.ev.Media, m) {
				c.ev.Media = append(c.ev.Media, m)
			}
		}
	}
	return nil
}

// reason reads a Jingle <reason/> and returns its condition's name.
func reason(r *reader) (string, error) {
	var cond string
	err := r.each(func(child xml.StartElement) (err error) {
		if cond == "" {
			if cond, err = reasonCondition(child.Name); err != nil {
				return err
			}
		}
		return r.skip()
	})
	return cond, err
}

// reasonCondition returns the name of a child of <reason/> if it is the
// condition (in the Jingle namespace, not <text/>), or "".
func reasonCondition(child xml.Name) (string, error) {
	if child.Space != NSJingle || child.Local == "text" {
		return "", nil
	}
	if len(child.Local) > maxReasonLen {
		return "", malformed("reason <%s/>", short(child.Local))
	}
	return child.Local, nil
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
