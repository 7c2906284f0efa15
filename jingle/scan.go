package jingle

import (
	"encoding/xml"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of the scanner, far above what servers send (a propose has six
// attributes on an element and five open elements).
const (
	maxDepth    = 64 // open elements
	maxAttrs    = 64 // attributes on one element
	inlineAttrs = 16 // of which a tag holds this many without allocating
	maxBindings = 32 // namespace prefixes in scope
)

// refusal is an ErrMalformed for XML that encoding/xml would read but this
// reader does not: what XMPP excludes, the stricter rules of Namespaces in
// XML, and its own limits. Tests tell it from broken XML.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

func refuse(format string, args ...any) error {
	return refusal{malformed(format, args...)}
}

// xmlNS is the namespace of the xml: prefix, as encoding/xml names it.
const xmlNS = "http://www.w3.org/XML/1998/namespace"

// xmlnsURI may not be bound to a prefix (Namespaces in XML 1.0, section 3).
const xmlnsURI = "http://www.w3.org/2000/xmlns/"

// scanner is the package's one XML reader: every parser walks its stanza
// with it. It reads what RFC 6120 section 11 lets a server send: elements,
// attributes in either quotes, character data with the predefined entities
// and character references, CDATA sections, and namespaces, default and
// prefixed. It refuses, as XMPP does, comments, processing instructions and
// DTDs, and beyond its limits: ASCII names only (every XMPP namespace's
// names are), the depths and counts above, and attribute values of
// maxAttrLen bytes. Tests hold it to encoding/xml token by token
// (FuzzScanner).
//
// It reads a copy of the stanza held in one string: names and plain values
// are substrings of it and cost nothing; only text or values with
// references, CDATA or carriage returns are built anew.
//
// Its methods mirror a tree walk: root, then next for each child and skip or
// text for the ones not read further. The first problem, of syntax or one a
// parser reports with fail, stops the walk: the methods then return at once,
// so a walk needs one check, finish, at its end.
type scanner struct {
	s     string
	pos   int
	plain bool // no '&' or '\r' in s: text and values are plain substrings
	depth int  // open elements
	// names are the qualified names of the open elements, root first, and
	// space their default namespaces; marks holds how many bindings were in
	// scope before each opened.
	names  [maxDepth]string
	space  [maxDepth]string
	marks  [maxDepth]uint8
	binds  [maxBindings]binding
	nbinds int
	empty  bool // the innermost element was <self-closing/>
	// nameStart is where the name qname read last begins.
	nameStart int
	err       error
}

// binding is a namespace prefix in scope.
type binding struct{ prefix, uri string }

// tag is a start element. Its first attributes live in the tag itself, so
// that reading one usually allocates nothing.
type tag struct {
	name  xml.Name
	n     int
	attrs [inlineAttrs]xml.Attr
	more  []xml.Attr
}

func (t *tag) reset() {
	t.n = 0
	t.more = t.more[:0]
}

func (t *tag) add(a xml.Attr) {
	if t.n < inlineAttrs {
		t.attrs[t.n] = a
	} else {
		t.more = append(t.more, a)
	}
	t.n++
}

// at returns the i-th attribute.
func (t *tag) at(i int) *xml.Attr {
	if i < inlineAttrs {
		return &t.attrs[i]
	}
	return &t.more[i-inlineAttrs]
}

// attr returns the value of the unprefixed attribute local, or "".
func (t *tag) attr(local string) string {
	for i := 0; i < t.n; i++ {
		if a := t.at(i); a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// lang returns the xml:lang attribute, or "".
func (t *tag) lang() string {
	for i := 0; i < t.n; i++ {
		if a := t.at(i); a.Name.Space == xmlNS && a.Name.Local == "lang" {
			return a.Value
		}
	}
	return ""
}

// init makes s read raw: it checks that raw is UTF-8 made of XML characters
// and copies it.
func (s *scanner) init(raw []byte) {
	s.plain = true
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case ' ' <= c && c < utf8.RuneSelf: // nearly every byte
			if c == '&' {
				s.plain = false
			}
		case c == '\t' || c == '\n':
		case c == '\r':
			s.plain = false
		case c < utf8.RuneSelf:
			s.fail(malformed("control character %#02x at byte %d", c, i))
			return
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				s.fail(malformed("invalid UTF-8 at byte %d", i))
				return
			}
			if r == 0xFFFE || r == 0xFFFF {
				s.fail(malformed("non-character %U at byte %d", r, i))
				return
			}
			i += n - 1
		}
	}
	s.s = string(raw)
}

// open starts reading raw, whose root must be the top-level stanza local,
// into root.
func (s *scanner) open(raw []byte, root *tag, local string) error {
	s.init(raw)
	if !s.root(root) {
		return s.err
	}
	if !isStanza(root.name, local, true) {
		return malformed("<%s/> instead of <%s/>", short(root.name.Local), local)
	}
	return nil
}

// fail records err unless an error came first, and returns false.
func (s *scanner) fail(err error) bool {
	if s.err == nil {
		s.err = err
	}
	return false
}

// root reads the stanza's start element into t; only whitespace may precede
// it.
func (s *scanner) root(t *tag) bool {
	if s.err != nil {
		return false
	}
	s.skipSpace()
	switch {
	case s.pos == len(s.s):
		return s.fail(malformed("no element"))
	case s.s[s.pos] != '<':
		return s.fail(refuse("text before the stanza"))
	}
	if s.refused(s.pos) {
		return false
	}
	s.pos++
	return s.start(t)
}

// finish reports the walk's first problem, or that anything but whitespace
// follows the stanza.
func (s *scanner) finish() error {
	if s.err == nil {
		s.skipSpace()
		switch {
		case s.depth != 0 || s.empty:
			s.fail(malformed("the stanza was not read to its end")) // a parser's mistake
		case s.pos != len(s.s):
			s.fail(refuse("data after the stanza"))
		}
	}
	return s.err
}

// next reads the next child of the innermost open element into t and
// returns true; at that element's end it consumes the end and returns false.
// Character data between children is checked and passed over.
func (s *scanner) next(t *tag) bool {
	if s.err != nil {
		return false
	}
	if s.depth == 0 {
		return s.fail(refuse("data after the stanza"))
	}
	if s.empty {
		s.empty = false
		s.close()
		return false
	}
	s.content(false)
	return s.markup(t)
}

// markup reads the tag at a '<': a child's start (true) or the end of the
// innermost element (false).
func (s *scanner) markup(t *tag) bool {
	if s.err != nil {
		return false
	}
	s.pos++ // '<'
	if !s.eat('/') {
		return s.start(t)
	}
	if _, _, ok := s.qname(); !ok {
		return false
	}
	if name := s.s[s.nameStart:s.pos]; name != s.names[s.depth-1] {
		return s.fail(malformed("</%s> ends <%s>", short(name), short(s.names[s.depth-1])))
	}
	s.skipSpace()
	if !s.eat('>') {
		return s.fail(malformed("end tag </%s> not closed", short(s.names[s.depth-1])))
	}
	s.close()
	return false
}

// skip consumes the rest of the innermost open element.
func (s *scanner) skip() {
	var t tag
	for end := s.depth - 1; s.err == nil && s.depth > end; {
		s.next(&t)
	}
}

// text returns the character data directly inside the innermost open
// element, its children left out, and consumes the element.
func (s *scanner) text() string {
	if s.err != nil {
		return ""
	}
	if s.empty {
		s.empty = false
		s.close()
		return ""
	}
	var text pieces
	var child tag
	for {
		text.add(s.content(true))
		if !s.markup(&child) {
			break // the element's end, or a problem
		}
		s.skip()
	}
	if s.err != nil {
		return ""
	}
	return text.String()
}

// close ends the innermost element.
func (s *scanner) close() {
	s.depth--
	s.nbinds = int(s.marks[s.depth])
}

// content reads character data and CDATA sections up to the next tag and
// leaves pos at its '<'. With build it returns the text, decoded.
func (s *scanner) content(build bool) string {
	var text pieces
	for s.err == nil {
		n := strings.IndexByte(s.s[s.pos:], '<')
		if n < 0 {
			s.fail(malformed("unexpected end of input: <%s> not closed", short(s.names[s.depth-1])))
			return ""
		}
		raw := s.s[s.pos : s.pos+n]
		if strings.Contains(raw, "]]>") {
			s.fail(malformed("]]> in text"))
			return ""
		}
		piece := s.decode(raw, build)
		s.pos += n
		if build {
			text.add(piece)
		}
		if !strings.HasPrefix(s.s[s.pos:], "<![CDATA[") {
			s.refused(s.pos)
			return text.String()
		}
		s.pos += len("<![CDATA[")
		end := strings.Index(s.s[s.pos:], "]]>")
		if end < 0 {
			s.fail(malformed("CDATA section not closed"))
			return ""
		}
		if build {
			text.add(normalizeLines(s.s[s.pos : s.pos+end]))
		}
		s.pos += end + len("]]>")
	}
	return ""
}

// pieces gathers text that may come in several pieces; one piece costs
// nothing.
type pieces struct {
	first string
	b     strings.Builder
	n     int
}

func (p *pieces) add(piece string) {
	switch {
	case piece == "":
	case p.n == 0:
		p.first, p.n = piece, 1
	case p.n == 1:
		p.b.WriteString(p.first)
		p.b.WriteString(piece)
		p.n = 2
	default:
		p.b.WriteString(piece)
	}
}

func (p *pieces) String() string {
	if p.n > 1 {
		return p.b.String()
	}
	return p.first
}

// refused reports whether the markup at the '<' at i is one XMPP forbids,
// and fails then.
func (s *scanner) refused(i int) bool {
	rest := s.s[i+1:]
	switch {
	case strings.HasPrefix(rest, "!--"):
		s.fail(refuse("a comment (XMPP forbids them)"))
	case strings.HasPrefix(rest, "?"):
		s.fail(refuse("a processing instruction (XMPP forbids them)"))
	case strings.HasPrefix(rest, "!"):
		s.fail(refuse("a DTD, or CDATA outside an element (XMPP forbids DTDs)"))
	default:
		return false
	}
	return true
}

// decode returns raw (text or an attribute value) with its references
// resolved and its line ends normalised, when build is set; without build
// it only checks the references.
func (s *scanner) decode(raw string, build bool) string {
	if s.plain || strings.IndexByte(raw, '&') < 0 && strings.IndexByte(raw, '\r') < 0 {
		return raw
	}
	var b strings.Builder
	if build {
		b.Grow(len(raw))
	}
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case '&':
			r, n, ok := reference(raw[i:])
			if !ok {
				s.fail(malformed("reference %q", short(raw[i:i+n])))
				return ""
			}
			if !isChar(r) {
				err := malformed("reference %q to a character XML does not allow", raw[i:i+n])
				if utf16.IsSurrogate(r) {
					err = refusal{err} // encoding/xml reads it as U+FFFD
				}
				s.fail(err)
				return ""
			}
			if build {
				b.WriteRune(r)
			}
			i += n
		case '\r':
			if build {
				b.WriteByte('\n')
			}
			if i++; i < len(raw) && raw[i] == '\n' {
				i++
			}
		default:
			if build {
				b.WriteByte(c)
			}
			i++
		}
	}
	return b.String()
}

// reference reads the entity or character reference at the start of s
// ("&amp;", "&#38;", "&#x26;") and returns its character and length, or
// false and how much of s it looked at. The character may be one XML does
// not allow: see isChar.
func reference(s string) (r rune, n int, ok bool) {
	end := strings.IndexByte(s, ';')
	if end < 0 {
		return 0, min(len(s), 16), false
	}
	switch name := s[1:end]; name {
	case "lt":
		return '<', end + 1, true
	case "gt":
		return '>', end + 1, true
	case "amp":
		return '&', end + 1, true
	case "apos":
		return '\'', end + 1, true
	case "quot":
		return '"', end + 1, true
	default:
		if len(name) < 2 || name[0] != '#' {
			return 0, end + 1, false
		}
		digits, base := name[1:], rune(10)
		if digits[0] == 'x' {
			digits, base = digits[1:], 16
		}
		if digits == "" {
			return 0, end + 1, false
		}
		for _, c := range []byte(digits) {
			var d rune
			switch {
			case '0' <= c && c <= '9':
				d = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = rune(c-'A') + 10
			default:
				return 0, end + 1, false
			}
			if r = r*base + d; r > utf8.MaxRune {
				return 0, end + 1, false
			}
		}
		return r, end + 1, true
	}
}

// isChar is XML 1.0's Char production.
func isChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		0x20 <= r && r <= 0xD7FF || 0xE000 <= r && r <= 0xFFFD || 0x10000 <= r && r <= utf8.MaxRune
}

// normalizeLines turns "\r\n" and a lone "\r" into "\n", as XML does.
func normalizeLines(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// start reads a start element after its '<' and opens it.
func (s *scanner) start(t *tag) bool {
	prefix, local, ok := s.qname()
	if !ok {
		return false
	}
	qname := s.s[s.nameStart:s.pos]
	if qname == "xmlns" {
		// encoding/xml would give it no namespace.
		return s.fail(refuse("an element named xmlns"))
	}
	if s.depth == maxDepth {
		return s.fail(refuse("more than %d nested elements", maxDepth))
	}
	t.reset()
	for {
		spaced := s.skipSpace()
		if s.pos == len(s.s) {
			return s.fail(malformed("unexpected end of input in <%s>", short(qname)))
		}
		if s.eat('>') {
			break
		}
		if s.eat('/') {
			if !s.eat('>') {
				return s.fail(malformed("'/' inside <%s>", short(qname)))
			}
			s.empty = true
			break
		}
		if !spaced {
			return s.fail(refuse("no space before an attribute of <%s>", short(qname)))
		}
		if t.n == maxAttrs {
			return s.fail(refuse("<%s/> has more than %d attributes", short(qname), maxAttrs))
		}
		if !s.attr(t, qname) {
			return false
		}
	}
	// Declarations first: they apply to the element's own name and
	// attributes.
	mark := s.nbinds
	space := ""
	if s.depth > 0 {
		space = s.space[s.depth-1]
	}
	for i := 0; i < t.n; i++ {
		a := t.at(i)
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			space = a.Value
		case a.Name.Space == "xmlns":
			if !s.bind(a.Name.Local, a.Value) {
				s.nbinds = mark
				return false
			}
		}
	}
	t.name = xml.Name{Space: space, Local: local}
	if prefix != "" {
		if t.name.Space, ok = s.lookup(prefix, qname); !ok {
			s.nbinds = mark
			return false
		}
	}
	for i := 0; i < t.n; i++ {
		a := t.at(i)
		switch a.Name.Space {
		case "", "xmlns":
		case "xml":
			a.Name.Space = xmlNS
		default:
			if a.Name.Space, ok = s.lookup(a.Name.Space, qname); !ok {
				s.nbinds = mark
				return false
			}
		}
		for j := 0; j < i; j++ {
			if t.at(j).Name == a.Name {
				s.nbinds = mark
				return s.fail(refuse("<%s/> has attribute %s twice", short(qname), short(a.Name.Local)))
			}
		}
	}
	s.names[s.depth], s.space[s.depth], s.marks[s.depth] = qname, space, uint8(mark)
	s.depth++
	return true
}

// attr reads name='value' or name="value" into t; the name's prefix is kept
// in Name.Space until start resolves it.
func (s *scanner) attr(t *tag, elem string) bool {
	prefix, local, ok := s.qname()
	if !ok {
		return false
	}
	s.skipSpace()
	if !s.eat('=') {
		return s.fail(malformed("attribute %s of <%s/> without value", short(local), short(elem)))
	}
	s.skipSpace()
	if s.pos == len(s.s) || s.s[s.pos] != '\'' && s.s[s.pos] != '"' {
		return s.fail(malformed("attribute %s of <%s/> not quoted", short(local), short(elem)))
	}
	quote := s.s[s.pos]
	s.pos++
	n := strings.IndexByte(s.s[s.pos:], quote)
	if n < 0 {
		return s.fail(malformed("attribute %s of <%s/> not closed", short(local), short(elem)))
	}
	raw := s.s[s.pos : s.pos+n]
	s.pos += n + 1
	if strings.IndexByte(raw, '<') >= 0 {
		return s.fail(malformed("'<' in attribute %s of <%s/>", short(local), short(elem)))
	}
	value := s.decode(raw, true)
	if s.err != nil {
		return false
	}
	if len(value) > maxAttrLen {
		return s.fail(refuse("attribute %s of <%s/> is %d bytes long", short(local), short(elem), len(value)))
	}
	t.add(xml.Attr{Name: xml.Name{Space: prefix, Local: local}, Value: value})
	return true
}

// bind declares prefix for uri in the element being opened.
func (s *scanner) bind(prefix, uri string) bool {
	switch {
	case prefix == "xml" && uri == xmlNS:
		return true // predeclared; declaring it again is allowed
	case prefix == "xml" || prefix == "xmlns" || uri == xmlNS || uri == xmlnsURI:
		return s.fail(refuse("xmlns:%s='%s' rebinds a reserved name", short(prefix), short(uri)))
	case uri == "":
		return s.fail(refuse("xmlns:%s='' (undeclaring a prefix is XML 1.1)", short(prefix)))
	case s.nbinds == maxBindings:
		return s.fail(refuse("more than %d namespace prefixes in scope", maxBindings))
	}
	s.binds[s.nbinds] = binding{prefix, uri}
	s.nbinds++
	return true
}

// lookup returns the namespace of prefix, used in the element elem.
func (s *scanner) lookup(prefix, elem string) (string, bool) {
	for i := s.nbinds - 1; i >= 0; i-- {
		if s.binds[i].prefix == prefix {
			return s.binds[i].uri, true
		}
	}
	if prefix == "xml" {
		return xmlNS, true
	}
	return "", s.fail(refuse("prefix %s of <%s/> is not declared", short(prefix), short(elem)))
}

// qname reads an XML name, "local" or "prefix:local", made of ASCII name
// characters; nameStart is where it began.
func (s *scanner) qname() (prefix, local string, ok bool) {
	s.nameStart = s.pos
	i, colon := s.pos, -1
	if i < len(s.s) && isNameStart(s.s[i]) {
		for i++; i < len(s.s); i++ {
			if c := s.s[i]; c == ':' && colon < 0 {
				colon = i
			} else if c == ':' || !isNameByte(c) {
				break
			}
		}
	}
	switch {
	case i == s.pos && (i == len(s.s) || s.s[i] != ':' && s.s[i] < utf8.RuneSelf):
		return "", "", s.fail(malformed("no name at byte %d", s.pos))
	case i == s.pos || i < len(s.s) && s.s[i] >= utf8.RuneSelf:
		return "", "", s.fail(refuse("name at byte %d: this reader takes ASCII names", s.pos))
	case colon == i-1 || i < len(s.s) && s.s[i] == ':' || colon >= 0 && !isNameStart(s.s[colon+1]):
		return "", "", s.fail(refuse("name %q at byte %d is not prefix:local", short(s.s[s.pos:min(i+1, len(s.s))]), s.pos))
	}
	name := s.s[s.pos:i]
	s.pos = i
	if colon < 0 {
		return "", name, true
	}
	colon -= s.nameStart
	return name[:colon], name[colon+1:], true
}

// isNameStart is an ASCII byte that may start an XML name (a colon may not,
// in a namespaced document).
func isNameStart(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_'
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
