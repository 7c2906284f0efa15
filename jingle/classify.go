package jingle

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Kind is what a raw top-level stanza is, decided cheaply from its bytes.
type Kind int

// Kinds of top-level stanza.
const (
	KindIgnore    Kind = iota // nothing jinglepush acts on (the ejabberd mod_service_log firehose: chat messages, forwarded presences, receipts, ...)
	KindCall                  // a <message> carrying a <forwarded> copy of a JMI or call-invite message or of a Jingle IQ
	KindPresence              // a top-level <presence>
	KindIQ                    // a top-level <iq>
	KindPrivilege             // a <message> carrying XEP-0356 <privilege> (permissions advertisement)
)

func (k Kind) String() string {
	switch k {
	case KindIgnore:
		return "ignore"
	case KindCall:
		return "call"
	case KindPresence:
		return "presence"
	case KindIQ:
		return "iq"
	case KindPrivilege:
		return "privilege"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Classify tells what a raw top-level stanza is from its element name and a
// search of its bytes for namespaces; it never builds a tree and never
// allocates.
//
// It may say KindCall for a message that ParseCall then rejects (a JMI element
// inside a MAM result, a Jingle namespace quoted in a chat body), but never
// KindIgnore for a forwarded JMI or XEP-0482 message of any action, in a
// carbon or not, or a forwarded Jingle IQ. Only whitespace may precede the element; anything else, and unknown
// element names, is KindIgnore.
func Classify(raw []byte) Kind {
	name := rootName(raw)
	switch {
	case string(name) == "presence":
		return KindPresence
	case string(name) == "iq":
		return KindIQ
	case string(name) != "message":
		return KindIgnore
	}
	// The search for the call namespaces leaves out <forwarded/>'s, which
	// shares their stem and is in every firehose copy.
	fw := bytes.Index(raw, []byte(NSForward))
	forwarded := fw >= 0
	if forwarded && (hasCallNS(raw[:fw]) || hasCallNS(raw[fw+len(NSForward):])) {
		return KindCall
	}
	// A permission advertisement comes straight from the server; a forwarded
	// one is a firehose copy of someone else's stanza.
	if !forwarded && bytes.Contains(raw, []byte(nsPrivilegePrefix)) {
		return KindPrivilege
	}
	return KindIgnore
}

// nsPrivilegePrefix is what NSPrivilege1 and NSPrivilege2 share.
const nsPrivilegePrefix = "urn:xmpp:privilege:"

// hasCallNS reports whether b mentions the JMI, the Jingle or the call
// invites namespace, in one pass over b (all three start with the same
// stem).
func hasCallNS(b []byte) bool {
	const stem = "urn:xmpp:"
	for {
		i := bytes.Index(b, []byte(stem))
		if i < 0 {
			return false
		}
		b = b[i:]
		if bytes.HasPrefix(b, []byte(NSJingleMessage)) || bytes.HasPrefix(b, []byte(NSJingle)) ||
			bytes.HasPrefix(b, []byte(NSCallInvites)) {
			return true
		}
		b = b[len(stem):]
	}
}

// rootName returns the local name of the element raw starts with, read the
// way encoding/xml reads it (so that Classify and the parsers agree), or nil.
func rootName(raw []byte) []byte {
	i := 0
	for i < len(raw) && isSpaceByte(raw[i]) {
		i++
	}
	if i == len(raw) || raw[i] != '<' {
		return nil
	}
	i++
	j := i
	for j < len(raw) && (raw[j] >= utf8.RuneSelf || isNameByte(raw[j])) {
		j++
	}
	name := raw[i:j]
	// "prefix:local"; encoding/xml keeps names with a leading or trailing
	// colon whole, and rejects names with two.
	if c := bytes.IndexByte(name, ':'); c > 0 && c < len(name)-1 {
		return name[c+1:]
	}
	return name
}

// isNameByte matches encoding/xml's test for ASCII name characters.
func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-'
}
