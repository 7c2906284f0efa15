package jingle

import "time"

// The fast paths of ParseCall and ParsePresence read the stanzas that make
// up real traffic with the scanner instead of encoding/xml, which costs
// several times more. They follow the slow paths step by step and share
// their checks, but only ever succeed or give up: whatever they do not
// fully understand, and every stanza the slow path would reject, is left to
// the slow path, so that it alone decides errors. FuzzParseCallFastSlow and
// FuzzParsePresenceFastSlow hold them to the same results.

// parseCallFast is parseCallSlow for a JMI element in a forwarded
// <message/>; a forwarded <iq/> (Jingle) is left to the slow path.
func parseCallFast(raw []byte) (CallEvent, bool) {
	s, ok := newScanner(raw)
	var root, child tag
	if !ok || !s.root(&root) || !isStanza(root.name, "message", true) || root.attr("type") == "error" {
		return CallEvent{}, false
	}
	var c call
	seen := false
	for s.next(&child) {
		if !seen && is(child.start(), NSForward, "forwarded") {
			seen = true
			c.scanForwarded(&s)
		} else {
			s.skip()
		}
	}
	if !s.done() {
		return CallEvent{}, false
	}
	ev, err := c.event(root.start())
	return ev, err == nil
}

// scanForwarded is forwarded on the scanner; a forwarded iq or presence is
// left to the slow path.
func (c *call) scanForwarded(s *scanner) {
	var child tag
	for s.next(&child) {
		switch {
		case isDelay(child.start()):
			c.forwardDelay = earliest(c.forwardDelay, scanDelay(s, &child))
		case c.inner == "" && isStanza(child.name, "message", false):
			c.inner = "message"
			c.scanMessage(s, &child)
		case c.inner == "" && (isStanza(child.name, "iq", false) || isStanza(child.name, "presence", false)):
			s.fail()
		default:
			s.skip()
		}
	}
}

// scanMessage is message on the scanner.
func (c *call) scanMessage(s *scanner, start *tag) {
	var child tag
	for s.next(&child) {
		action, isJMI := jmiAction(child.name.Local)
		switch {
		case isJMI && child.name.Space == NSJingleMessage && c.ev.Action == "":
			c.scanJMI(s, &child, action)
		case isDelay(child.start()):
			c.innerDelay = earliest(c.innerDelay, scanDelay(s, &child))
		default:
			s.skip()
		}
	}
	if c.ev.Action != "" && start.attr("type") == "error" {
		s.fail()
	}
	c.stanza(start.start())
}

// scanJMI is jmi on the scanner.
func (c *call) scanJMI(s *scanner, start *tag, action Action) {
	id, err := callID(start.name.Local, "id", start.attr("id"))
	if err != nil {
		s.fail()
	}
	c.ev.Action, c.ev.ID = action, id
	descriptions := 0
	var child tag
	for s.next(&child) {
		switch {
		case child.name.Local == "description":
			if err := c.addDescription(child.name, child.attr("media"), &descriptions); err != nil {
				s.fail()
			}
			s.skip()
		case is(child.start(), NSJingle, "reason"):
			c.ev.Reason = scanReason(s)
		default:
			s.skip()
		}
	}
	if action != ActionPropose {
		c.ev.Media = nil
	}
}

// scanReason is reason on the scanner.
func scanReason(s *scanner) string {
	var cond string
	var child tag
	for s.next(&child) {
		if cond == "" {
			var err error
			if cond, err = reasonCondition(child.name); err != nil {
				s.fail()
			}
		}
		s.skip()
	}
	return cond
}

// scanDelay is reader.delay on the scanner.
func scanDelay(s *scanner, start *tag) time.Time {
	t, err := delayStamp(start.name, start.attr("stamp"))
	if err != nil {
		s.fail()
	}
	s.skip()
	return t
}

// parsePresenceFast is parsePresenceSlow for a presence without mixed
// content in its <status/>.
func parsePresenceFast(raw []byte) (Presence, bool) {
	s, ok := newScanner(raw)
	var root, child tag
	if !ok || !s.root(&root) || !isStanza(root.name, "presence", true) {
		return Presence{}, false
	}
	p, err := presenceHeader(root.start())
	if err != nil {
		return Presence{}, false
	}
	status := false
	for s.next(&child) {
		switch {
		case isDelay(child.start()):
			p.Delay = earliest(p.Delay, scanDelay(&s, &child))
		case !status && isStatus(child.start(), root.start()):
			status = true
			p.Status = s.text()
		default:
			s.skip()
		}
	}
	if !s.done() {
		return Presence{}, false
	}
	return p, true
}
