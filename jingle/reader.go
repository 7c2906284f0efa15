package jingle

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Sentinel errors; every error of this package wraps one of them (test with
// errors.Is).
var (
	// ErrNotCall: the stanza is well-formed (as far as it was read) but holds
	// no call event, e.g. a forwarded chat message, a Jingle transport-info,
	// or a JMI element nested in a carbon.
	ErrNotCall = errors.New("jingle: not a call event")
	// ErrMalformed: broken XML, a missing or invalid attribute the event
	// needs (id, sid, from, to), or a value beyond this package's limits.
	ErrMalformed = errors.New("jingle: malformed stanza")
)

// Limits that keep hostile input cheap; attribute limits apply to the
// elements a parser looks at (subtrees it skips are only checked for
// well-formedness). Stanzas from the servers stay far below them.
const (
	maxIDLen        = 256  // JMI id, Jingle sid
	maxAttrLen      = 3072 // any attribute value; the longest valid JID is 3071 bytes
	maxAttrs        = 64   // attributes on one element
	maxDescriptions = 16   // descriptions in one propose or session-initiate
	maxMediaLen     = 32   // one media name ("audio", "video")
	maxReasonLen    = 64   // a reason condition's element name
	maxFormFields   = 128  // fields in one data form
	maxFieldValues  = 64   // values of one field
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func notCall(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotCall}, args...)...)
}

// reader walks the tokens of one stanza. Every syntax error comes back as
// ErrMalformed, and every start element it returns has passed the
// attribute limits.
type reader struct {
	d *xml.Decoder
}

func newReader(raw []byte) *reader {
	return &reader{d: xml.NewDecoder(bytes.NewReader(raw))}
}

func (r *reader) token() (xml.Token, error) {
	tok, err := r.d.Token()
	if err == io.EOF {
		return nil, malformed("unexpected end of input")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if start, ok := tok.(xml.StartElement); ok {
		if len(start.Attr) > maxAttrs {
			return nil, malformed("<%s/> has %d attributes", start.Name.Local, len(start.Attr))
		}
		for _, a := range start.Attr {
			if len(a.Value) > maxAttrLen {
				return nil, malformed("attribute %s of <%s/> is %d bytes long", a.Name.Local, start.Name.Local, len(a.Value))
			}
		}
	}
	return tok, nil
}

// root returns the stanza's start element. Only whitespace may precede it,
// as in Classify.
func (r *reader) root() (xml.StartElement, error) {
	for {
		tok, err := r.token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, malformed("text before the stanza")
			}
		default:
			return xml.StartElement{}, malformed("%T before the stanza", tok)
		}
	}
}

// finish checks that nothing but whitespace follows the stanza's end.
func (r *reader) finish() error {
	for {
		tok, err := r.d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: after the stanza: %w", ErrMalformed, err)
		}
		if cd, ok := tok.(xml.CharData); !ok || !isSpace(cd) {
			return malformed("data after the stanza")
		}
	}
}

// each calls f with each child element of the element whose start was
// read last, and then consumes that element's end. f must consume the child
// it gets: read it to its end, or skip it.
func (r *reader) each(f func(child xml.StartElement) error) error {
	for {
		tok, err := r.token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := f(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// skip consumes the rest of the element whose start was read last.
func (r *reader) skip() error {
	if err := r.d.Skip(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// text returns the character data directly inside the element whose start
// was read last, and consumes that element.
func (r *reader) text() (string, error) {
	var b strings.Builder
	for {
		tok, err := r.token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.StartElement:
			if err := r.skip(); err != nil {
				return "", err
			}
		case xml.EndElement:
			return b.String(), nil
		}
	}
}

// delay reads a XEP-0203 <delay/> (or a legacy jabber:x:delay <x/>) and
// consumes it.
func (r *reader) delay(start xml.StartElement) (time.Time, error) {
	if err := r.skip(); err != nil {
		return time.Time{}, err
	}
	return delayStamp(start.Name, attr(start, "stamp"))
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

// isDelay reports whether start is a delayed-delivery element.
func isDelay(start xml.StartElement) bool {
	return is(start, NSDelay, "delay") || is(start, NSDelayLegacy, "x")
}

// earliest keeps the oldest of several delay stamps: the original send time,
// which is what staleness is judged by.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func is(start xml.StartElement, space, local string) bool {
	return start.Name.Local == local && start.Name.Space == space
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

// attr returns the value of the unprefixed attribute local, or "".
func attr(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
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

func isSpace(b []byte) bool {
	for _, c := range b {
		if !isSpaceByte(c) {
			return false
		}
	}
	return true
}

// isSpaceByte is XML's whitespace (S production).
func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}
