package jingle

import (
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
)

// Sentinel errors; every error of this package wraps one of them (test with
// errors.Is).
var (
	// ErrNotCall: the stanza is well-formed (as far as it was read) but holds
	// no call event, e.g. a forwarded chat message, a Jingle transport-info,
	// a JMI element nested in a MAM result, or a spoofed carbon.
	ErrNotCall = errors.New("jingle: not a call event")
	// ErrMalformed: broken XML, a missing or invalid attribute the event
	// needs (id, sid, from, to), or a value beyond this package's limits.
	ErrMalformed = errors.New("jingle: malformed stanza")
)

// Limits that keep hostile input cheap; attribute limits apply to every
// element, the others to the elements a parser looks at. Stanzas from the
// servers stay far below them.
const (
	maxIDLen        = 256  // JMI id, Jingle sid, <migrated to=…/>
	maxAttrLen      = 3072 // any attribute value, decoded; the longest valid JID is 3071 bytes
	maxDescriptions = 16   // descriptions in one propose or session-initiate
	maxMediaLen     = 32   // one media name ("audio", "video")
	maxReasonLen    = 64   // a reason condition's element name
	maxFormFields   = 128  // fields in one data form
	maxFieldValues  = 64   // values of one field
	maxRosterItems  = 10000
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func notCall(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotCall}, args...)...)
}

// delayStamp parses the stamp of a XEP-0203 <delay/> or legacy <x/>.
func delayStamp(name xml.Name, stamp string) (time.Time, error) {
	if stamp == "" {
		return time.Time{}, malformed("<%s xmlns='%s'/> without stamp", name.Local, name.Space)
	}
	layout := time.RFC3339Nano // XEP-0082; fractional seconds are optional when parsing
	if name.Space == NSDelayLegacy {
		layout = "20060102T15:04:05" // XEP-0091: UTC, no zone
	}
	t, err := time.Parse(layout, stamp)
	if err != nil {
		return time.Time{}, malformed("delay stamp %q: %v", short(stamp), err)
	}
	return t.UTC(), nil
}

// readDelay reads the delayed-delivery element start, which s has just
// opened, and consumes it.
func readDelay(s *scanner, start *tag) time.Time {
	t, err := delayStamp(start.name, start.attr("stamp"))
	if err != nil {
		s.fail(err)
	}
	s.skip()
	return t
}

// isDelay reports whether name is a delayed-delivery element.
func isDelay(name xml.Name) bool {
	return is(name, NSDelay, "delay") || is(name, NSDelayLegacy, "x")
}

// earliest keeps the oldest of several delay stamps: the original send time,
// which is what staleness is judged by.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func is(name xml.Name, space, local string) bool {
	return name.Local == local && name.Space == space
}

// isStanza reports whether name is the stanza called local. Top-level
// stanzas have no namespace (topLevel); embedded copies must name one.
func isStanza(name xml.Name, local string, topLevel bool) bool {
	if name.Local != local {
		return false
	}
	switch name.Space {
	case NSClient, NSServer, NSComponent:
		return true
	case "":
		return topLevel
	}
	return false
}

// parseJID parses a required JID attribute value.
func parseJID(what, s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, malformed("missing %s", what)
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, malformed("%s %q: %v", what, short(s), err)
	}
	return j, nil
}

// parseOptionalJID parses a JID attribute value that may be absent.
func parseOptionalJID(what, s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, nil
	}
	return parseJID(what, s)
}

// short cuts s for error messages.
func short(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// isSpaceByte is XML's whitespace (S production).
func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}
