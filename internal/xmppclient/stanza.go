package xmppclient

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// Namespaces the client speaks.
const (
	nsClient   = "jabber:client"
	nsStream   = "http://etherx.jabber.org/streams"
	nsStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession  = "urn:ietf:params:xml:ns:xmpp-session"
	nsSM       = "urn:xmpp:sm:3"
	nsPing     = "urn:xmpp:ping"
	nsPush     = "urn:xmpp:push:0"
	nsCommands = "http://jabber.org/protocol/commands"
	nsData     = "jabber:x:data"
	nsXML      = "http://www.w3.org/XML/1998/namespace"

	publishOptionsFormType = "http://jabber.org/protocol/pubsub#publish-options"
)

// Stanza is one top-level element received on a stream: a message, presence
// or iq, or any other element the client does not handle itself.
type Stanza struct {
	// Name is the element's name with its namespace resolved, e.g.
	// {jabber:client message}.
	Name xml.Name
	// Attrs are the attributes of the top-level element, namespace
	// declarations left out. xml:lang has Space
	// "http://www.w3.org/XML/1998/namespace".
	Attrs []xml.Attr
	// Raw is the element exactly as the server sent it, with the stream
	// header's namespace declarations it relies on added to its start tag, so
	// that it parses on its own (see ElementReader).
	Raw string
}

// Attr returns the value of the unqualified attribute name, or "".
func (s Stanza) Attr(name string) string {
	for _, a := range s.Attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// ID returns the id attribute.
func (s Stanza) ID() string { return s.Attr("id") }

// From returns the from attribute.
func (s Stanza) From() string { return s.Attr("from") }

// To returns the to attribute.
func (s Stanza) To() string { return s.Attr("to") }

// Type returns the type attribute.
func (s Stanza) Type() string { return s.Attr("type") }

// String returns Raw.
func (s Stanza) String() string { return s.Raw }

// Unmarshal decodes Raw into v with encoding/xml; struct tags may name
// namespaces, e.g. `xml:"jabber:client message"`.
func (s Stanza) Unmarshal(v any) error { return xml.Unmarshal([]byte(s.Raw), v) }

// isStanza reports whether s is a message, presence or iq of a client stream:
// the elements XEP-0198 counts.
func (s Stanza) isStanza() bool {
	if s.Name.Space != nsClient {
		return false
	}
	switch s.Name.Local {
	case "message", "presence", "iq":
		return true
	}
	return false
}

// StanzaError is an error reply (RFC 6120 section 8.3) to a request.
type StanzaError struct {
	Type      string // cancel, continue, modify, auth or wait
	Condition string // e.g. service-unavailable
	Text      string // the optional human-readable <text/>
	By        string
	// Stanza is the whole error reply.
	Stanza Stanza
}

func (e *StanzaError) Error() string {
	msg := fmt.Sprintf("xmppclient: %s error from %s: %s", e.Type, e.Stanza.From(), e.Condition)
	if e.Text != "" {
		msg += " (" + e.Text + ")"
	}
	return msg
}

// StreamError is a <stream:error/> (RFC 6120 section 4.9); the server closes
// the stream after sending it.
type StreamError struct {
	Condition string // e.g. conflict, policy-violation, system-shutdown
	Text      string
	Raw       string
}

func (e *StreamError) Error() string {
	msg := "xmppclient: stream error: " + e.Condition
	if e.Text != "" {
		msg += " (" + e.Text + ")"
	}
	return msg
}

// SASLError is a SASL <failure/> (RFC 6120 section 6.5).
type SASLError struct {
	Condition string // e.g. not-authorized
	Text      string
}

func (e *SASLError) Error() string {
	msg := "xmppclient: authentication failed: " + e.Condition
	if e.Text != "" {
		msg += " (" + e.Text + ")"
	}
	return msg
}

// conditionText is the shape shared by stanza, stream and SASL errors: one
// defined-condition element, and an optional <text/>.
type conditionText struct {
	Type     string `xml:"type,attr"`
	By       string `xml:"by,attr"`
	Children []struct {
		XMLName xml.Name
		Text    string `xml:",chardata"`
	} `xml:",any"`
}

func (c conditionText) split(ns string) (condition, text string) {
	for _, ch := range c.Children {
		switch {
		case ch.XMLName.Local == "text":
			text = ch.Text
		case condition == "" && (ns == "" || ch.XMLName.Space == ns):
			condition = ch.XMLName.Local
		}
	}
	return condition, text
}

func parseStanzaError(st Stanza) *StanzaError {
	var v struct {
		Error conditionText `xml:"error"`
	}
	e := &StanzaError{Stanza: st, Condition: "undefined-condition"}
	if err := st.Unmarshal(&v); err != nil {
		return e
	}
	e.Type, e.By = v.Error.Type, v.Error.By
	if cond, text := v.Error.split(nsStanzas); cond != "" {
		e.Condition, e.Text = cond, text
	} else {
		e.Text = text
	}
	return e
}

func parseStreamError(st Stanza) *StreamError {
	var v conditionText
	e := &StreamError{Raw: st.Raw, Condition: "undefined-condition"}
	if err := st.Unmarshal(&v); err == nil {
		if cond, text := v.split(nsStreams); cond != "" {
			e.Condition, e.Text = cond, text
		}
	}
	return e
}

// escape makes s safe inside an XML attribute value quoted with either quote
// character, or inside text.
func escape(s string) string {
	if !strings.ContainsAny(s, `&<>'"`+"\t\n\r") {
		return s
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // escapes ', " and \t \n \r too; never fails on a Builder
	return b.String()
}
