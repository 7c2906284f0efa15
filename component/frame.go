package component

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// errStreamEnd is returned when the server closes its stream (</stream:stream>).
var errStreamEnd = errors.New("component: server closed the stream")

// framer cuts the server's stream into top-level elements without parsing
// them: it follows '<', quotes and '>' to keep the nesting depth, which is
// all it takes to find where a stanza ends in XMPP's restricted XML (no
// comments, processing instructions or DTDs; RFC 6120 section 11.1).
// Deciding what a stanza means is left to package jingle, which mostly only
// needs to look at the bytes.
type framer struct {
	r   *bufio.Reader
	max int
	buf []byte
	// keep is false while an oversized element is being skipped.
	keep bool
	// oversize counts elements longer than max, which were skipped, and
	// heads holds the start tags of the last few (so that an IQ among them
	// can still be answered).
	oversize int
	heads    [][]byte
	headLen  int // the length of the current element's start tag, once read
}

func newFramer(r *bufio.Reader, max int) *framer {
	return &framer{r: r, max: max, buf: make([]byte, 0, 4096)}
}

// errMalformed is a stream the framer cannot follow; the connection is
// dropped and reopened.
type errMalformed struct{ msg string }

func (e errMalformed) Error() string { return "component: malformed stream: " + e.msg }

// next returns the next top-level element. The slice is only valid until the
// next call. An element over the size limit is skipped (and counted): next
// then returns nil and no error.
func (f *framer) next() ([]byte, error) {
	el, skipped, err := f.element()
	if err != nil {
		return nil, err
	}
	if skipped {
		f.oversize++
		return nil, nil
	}
	return el, nil
}

func (f *framer) element() (el []byte, skipped bool, err error) {
	// Whitespace between stanzas is keepalive traffic.
	var c byte
	for {
		if c, err = f.r.ReadByte(); err != nil {
			return nil, false, err
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			break
		}
	}
	if c != '<' {
		return nil, false, errMalformed{fmt.Sprintf("text %q between stanzas", c)}
	}
	f.buf = append(f.buf[:0], c)
	f.keep = true
	f.headLen = 0
	depth := 0
	for {
		// At a '<' already consumed: what kind of markup?
		c, err = f.readByte()
		if err != nil {
			return nil, false, unexpectedEOF(err)
		}
		switch c {
		case '/':
			// An end tag.
			if depth == 0 {
				if err := f.skipTag(); err != nil {
					return nil, false, err
				}
				return nil, false, errStreamEnd
			}
			if err := f.skipTag(); err != nil {
				return nil, false, err
			}
			depth--
		case '!':
			if err := f.skipCDATA(); err != nil {
				return nil, false, err
			}
		case '?':
			return nil, false, errMalformed{"processing instruction"}
		default:
			selfClosing, err := f.skipStartTag()
			if err != nil {
				return nil, false, err
			}
			if depth == 0 && f.keep {
				f.headLen = len(f.buf)
			}
			if !selfClosing {
				depth++
			}
		}
		if depth == 0 {
			return f.buf, !f.keep, nil
		}
		// Content up to the next '<'.
		for {
			c, err = f.readByte()
			if err != nil {
				return nil, false, unexpectedEOF(err)
			}
			if c == '<' {
				break
			}
		}
	}
}

// readByte reads one byte, keeping it in buf until the element outgrows the
// size limit; from then on the element is only followed, not kept.
func (f *framer) readByte() (byte, error) {
	c, err := f.r.ReadByte()
	if err == nil && f.keep {
		if f.max > 0 && len(f.buf) >= f.max {
			f.keep = false
			if f.headLen > 0 && len(f.heads) < 16 {
				f.heads = append(f.heads, append([]byte(nil), f.buf[:f.headLen]...))
			}
			f.buf = f.buf[:0]
		} else {
			f.buf = append(f.buf, c)
		}
	}
	return c, err
}

// skipStartTag reads the rest of a start tag, honouring quoted attribute
// values (which may hold '>' and '/').
func (f *framer) skipStartTag() (selfClosing bool, err error) {
	var quote, prev byte
	for {
		c, err := f.readByte()
		if err != nil {
			return false, unexpectedEOF(err)
		}
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<':
			return false, errMalformed{"'<' inside a tag"}
		case c == '>':
			return prev == '/', nil
		}
		prev = c
	}
}

func (f *framer) skipTag() error {
	for {
		c, err := f.readByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		if c == '>' {
			return nil
		}
		if c == '<' {
			return errMalformed{"'<' inside an end tag"}
		}
	}
}

// skipCDATA reads a CDATA section. Comments and DTDs are not allowed on an
// XMPP stream.
func (f *framer) skipCDATA() error {
	const open = "[CDATA["
	for i := 0; i < len(open); i++ {
		c, err := f.readByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		if c != open[i] {
			return errMalformed{"comment or DTD"}
		}
	}
	// Up to "]]>".
	var b1, b2 byte
	for {
		c, err := f.readByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		if c == '>' && b1 == ']' && b2 == ']' {
			return nil
		}
		b2, b1 = b1, c
	}
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
