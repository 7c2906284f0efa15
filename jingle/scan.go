package jingle

import (
	"encoding/xml"
	"strings"
	"unicode/utf8"
)

// Limits of the scanner, well above what the servers send (six attributes
// on an element and five open elements in a propose). Beyond them it gives up, and so do the
// fast paths that use it.
const (
	maxScanAttrs = 16 // attributes on one element
	maxScanDepth = 16 // open elements
)

// xmlNS is the namespace encoding/xml gives the xml: prefix.
const xmlNS = "http://www.w3.org/XML/1998/namespace"

// scanner reads the plain XML that servers send, without encoding/xml: no
// entities or character references, CDATA, comments, processing
// instructions or namespace prefixes (but xml:lang), no '\r', which
// encoding/xml rewrites, and nothing after the root element but whitespace.
// On anything else it gives up (ok becomes false and stays so), and the
// caller leaves the stanza to encoding/xml. What it accepts, encoding/xml
// reads the same way: the same elements, namespaces and attribute values.
//
// Its methods walk the tree like reader's: next and skip in place of each
// and skip. After giving up they return at once, so a walk ends quickly and
// needs one check, done, at its end.
type scanner struct {
	s     string // the stanza; every name and value is a substring of it
	pos   int
	depth int                  // open elements
	names [maxScanDepth]string // their names, root first
	space [maxScanDepth]string // their default namespaces
	empty bool                 // the innermost element was <self-closing/>
	ok    bool
}

// tag is a start element read by the scanner. Its attributes live in the
// tag, so that reading one allocates nothing.
type tag struct {
	name  xml.Name
	attrs [maxScanAttrs]xml.Attr
	n     int
}

// start returns t for the helpers the slow path uses too; the result
// shares t's attributes.
func (t *tag) start() xml.StartElement {
	return xml.StartElement{Name: t.name, Attr: t.attrs[:t.n]}
}

// attr is attr for t.
func (t *tag) attr(local string) string {
	return attr(t.start(), local)
}

// newScanner returns a scanner on raw, or false when raw holds a byte the
// scanner leaves to encoding/xml. It copies raw into one string, so the
// strings it hands out share that one allocation (and keep it alive while
// an event's ID or a presence's Status does).
func newScanner(raw []byte) (scanner, bool) {
	if !plain(raw) {
		return scanner{}, false
	}
	return scanner{s: string(raw), ok: true}, true
}

// plain reports whether b is valid UTF-8 made of XML characters, without
// '&' (entities and character references) or '\r'.
func plain(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case ' ' <= c && c < utf8.RuneSelf: // nearly every byte
			if c == '&' {
				return false
			}
		case c == '\t' || c == '\n':
		case c < utf8.RuneSelf:
			return false
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
				return false
			}
			i += n - 1
		}
	}
	return true
}

func (s *scanner) fail() bool {
	s.ok = false
	return false
}

// root reads the stanza's start element; only whitespace may precede it.
func (s *scanner) root(t *tag) bool {
	s.skipSpace()
	if !s.eat('<') {
		return s.fail()
	}
	return s.start(t)
}

// done reports whether the whole stanza was read without giving up: the
// root element is closed and only whitespace follows it.
func (s *scanner) done() bool {
	s.skipSpace()
	return s.ok && s.depth == 0 && !s.empty && s.pos == len(s.s)
}

// next reads the next child of the innermost open element into t and
// returns true; at that element's end it consumes the end and returns false.
// Character data between children is passed over.
func (s *scanner) next(t *tag) bool {
	if !s.ok || s.depth == 0 {
		return s.fail()
	}
	if s.empty {
		s.empty = false
		s.depth--
		return false
	}
	s.charData()
	if !s.eat('<') {
		return s.fail()
	}
	if !s.eat('/') {
		return s.start(t)
	}
	if s.name() != s.names[s.depth-1] {
		return s.fail()
	}
	s.skipSpace()
	if !s.eat('>') {
		return s.fail()
	}
	s.depth--
	return false
}

// skip consumes the rest of the innermost open element.
func (s *scanner) skip() {
	var t tag
	for s.next(&t) {
		s.skip()
	}
}

// text returns the character data of the innermost open element and
// consumes the element. An element with children is given up on: its text
// would come in pieces.
func (s *scanner) text() string {
	var text string
	if !s.empty {
		text = s.charData()
	}
	var t tag
	if s.next(&t) {
		s.fail()
	}
	return text
}

// charData passes over the character data before the next '<' and returns
// it. plain has checked its bytes; "]]>" is all that remains to refuse.
func (s *scanner) charData() string {
	n := strings.IndexByte(s.s[s.pos:], '<')
	if n < 0 {
		n = len(s.s) - s.pos
	}
	text := s.s[s.pos : s.pos+n]
	if strings.Contains(text, "]]>") {
		s.fail()
	}
	s.pos += n
	return text
}

// start reads a start element after its '<' and opens it.
func (s *scanner) start(t *tag) bool {
	name := s.name()
	// encoding/xml never gives an element called xmlns a namespace.
	if name == "" || name == "xmlns" || s.depth == maxScanDepth {
		return s.fail()
	}
	space := ""
	if s.depth > 0 {
		space = s.space[s.depth-1]
	}
	t.n = 0
	for {
		spaced := s.skipSpace()
		switch {
		case s.eat('>'):
		case s.eat('/'):
			if !s.eat('>') {
				return s.fail()
			}
			s.empty = true
		case !spaced || t.n == maxScanAttrs:
			return s.fail()
		default:
			a, ok := s.attr()
			if !ok || hasAttr(t.attrs[:t.n], a.Name) {
				return s.fail()
			}
			if a.Name.Space == "" && a.Name.Local == "xmlns" {
				space = a.Value
			}
			t.attrs[t.n] = a
			t.n++
			continue
		}
		break
	}
	t.name = xml.Name{Space: space, Local: name}
	s.names[s.depth], s.space[s.depth] = name, space
	s.depth++
	return true
}

// attr reads name='value' or name="value". The only prefixed name it takes
// is xml:lang, named the way encoding/xml names it.
func (s *scanner) attr() (xml.Attr, bool) {
	var a xml.Attr
	a.Name.Local = s.name()
	if a.Name.Local == "xml" && s.eat(':') {
		if s.name() != "lang" {
			return a, false
		}
		a.Name = xml.Name{Space: xmlNS, Local: "lang"}
	}
	s.skipSpace()
	if a.Name.Local == "" || !s.eat('=') {
		return a, false
	}
	s.skipSpace()
	if s.pos == len(s.s) || s.s[s.pos] != '\'' && s.s[s.pos] != '"' {
		return a, false
	}
	quote := s.s[s.pos]
	s.pos++
	n := strings.IndexByte(s.s[s.pos:], quote)
	if n < 0 || n > maxAttrLen {
		return a, false
	}
	a.Value = s.s[s.pos : s.pos+n]
	s.pos += n + 1
	return a, !strings.Contains(a.Value, "<")
}

// name reads an ASCII XML name without a colon, or returns "". A name that
// goes on with a colon or a non-ASCII letter is cut there, and the byte
// that follows then stops the scanner.
func (s *scanner) name() string {
	i := s.pos
	if i < len(s.s) && isNameStart(s.s[i]) {
		for i++; i < len(s.s) && isNameByte(s.s[i]) && s.s[i] != ':'; i++ {
		}
	}
	name := s.s[s.pos:i]
	s.pos = i
	return name
}

// isNameStart is an ASCII byte that may start an XML name.
func isNameStart(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_'
}

// hasAttr reports whether attrs has one called name.
func hasAttr(attrs []xml.Attr, name xml.Name) bool {
	for _, a := range attrs {
		if a.Name == name {
			return true
		}
	}
	return false
}

// skipSpace passes over whitespace and reports whether there was any.
func (s *scanner) skipSpace() bool {
	i := s.pos
	for s.pos < len(s.s) && isSpaceByte(s.s[s.pos]) {
		s.pos++
	}
	return s.pos > i
}

// eat consumes c if it comes next.
func (s *scanner) eat(c byte) bool {
	if s.pos < len(s.s) && s.s[s.pos] == c {
		s.pos++
		return true
	}
	return false
}
