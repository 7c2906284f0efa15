package xmppclient

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrStreamClosed is returned by [ElementReader.Next] when the peer ends the
// stream with </stream:stream>, and is the reason a [Client] reports when the
// server closed the stream first.
var ErrStreamClosed = errors.New("xmppclient: stream closed by peer")

// DefaultMaxElementSize bounds one top-level element read by [ElementReader].
const DefaultMaxElementSize = 4 << 20

// Header is an XMPP stream header as the peer sent it.
type Header struct {
	ID      string
	From    string
	To      string
	Version string // "" when absent: XEP-0114 servers send none
	Lang    string
	// XMLNS is the stream's default namespace (jabber:client,
	// jabber:component:accept, ...).
	XMLNS string
}

// ElementReader cuts an XMPP stream into top-level elements (the children of
// <stream:stream>). It reads with encoding/xml, so the input is checked for
// well-formedness and namespaces are resolved, but it hands out the bytes the
// peer sent rather than a re-encoding of the tokens: re-encoding with
// encoding/xml duplicates xmlns attributes (the decoder keeps them both in
// Attr and in Name.Space), and it would hide what the server really wrote.
//
// An element on the wire relies on namespace declarations made on the stream
// header (<message> has no xmlns of its own; <stream:features> needs the
// stream prefix). Stanza.Raw therefore gets the header's declarations that the
// element uses and does not redeclare copied onto its start tag, which makes
// every Raw a standalone, well-formed XML document.
//
// The decoder reads through an io.ByteReader, so it never reads ahead past
// the end of the element it returns: Next returns as soon as the last '>' of
// an element has arrived, whatever the TCP segmentation.
type ElementReader struct {
	src     *recorder
	dec     *xml.Decoder
	dropped int64    // bytes removed from the front of src.buf since dec was created
	decls   []nsDecl // namespace declarations of the current stream header
	max     int64
}

type nsDecl struct{ prefix, uri string }

// NewElementReader returns a reader for the stream on r. Call ReadHeader
// first, then Next for each element.
func NewElementReader(r io.Reader) *ElementReader {
	er := &ElementReader{src: &recorder{r: bufio.NewReader(r)}, max: DefaultMaxElementSize}
	er.Reset()
	return er
}

// SetMaxElementSize changes the largest element Next accepts (in bytes).
func (er *ElementReader) SetMaxElementSize(n int) { er.max = int64(n) }

// Reset forgets the current stream so that the next ReadHeader reads a new
// stream header, as needed after SASL success (RFC 6120 section 6.4.6). It
// must only be called between elements.
func (er *ElementReader) Reset() {
	er.src.buf = er.src.buf[:0]
	er.dropped = 0
	er.decls = nil
	er.dec = xml.NewDecoder(er.src)
}

// ReadHeader reads the optional XML declaration and the <stream:stream>
// start tag.
func (er *ElementReader) ReadHeader() (Header, error) {
	for {
		tok, err := er.dec.Token()
		if err != nil {
			return Header{}, fmt.Errorf("xmppclient: reading stream header: %w", eofIsUnexpected(err))
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.Comment, xml.Directive:
			continue
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
			return Header{}, fmt.Errorf("xmppclient: text %q before the stream header", t)
		case xml.StartElement:
			if t.Name.Space != nsStream || t.Name.Local != "stream" {
				return Header{}, fmt.Errorf("xmppclient: expected a stream header, got <%s xmlns='%s'>", t.Name.Local, t.Name.Space)
			}
			h := Header{}
			er.decls = er.decls[:0]
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					er.decls = append(er.decls, nsDecl{"", a.Value})
					h.XMLNS = a.Value
				case a.Name.Space == "xmlns":
					er.decls = append(er.decls, nsDecl{a.Name.Local, a.Value})
				case a.Name.Space == "" && a.Name.Local == "id":
					h.ID = a.Value
				case a.Name.Space == "" && a.Name.Local == "from":
					h.From = a.Value
				case a.Name.Space == "" && a.Name.Local == "to":
					h.To = a.Value
				case a.Name.Space == "" && a.Name.Local == "version":
					h.Version = a.Value
				case a.Name.Space == nsXML && a.Name.Local == "lang":
					h.Lang = a.Value
				}
			}
			er.trim()
			return h, nil
		default:
			return Header{}, fmt.Errorf("xmppclient: unexpected %T before the stream header", tok)
		}
	}
}

// Next returns the next top-level element. Whitespace between elements
// (keepalives) is skipped. At </stream:stream> it returns ErrStreamClosed.
func (er *ElementReader) Next() (Stanza, error) {
	for {
		er.trim()
		start := er.dec.InputOffset()
		tok, err := er.dec.Token()
		if err != nil {
			return Stanza{}, eofIsUnexpected(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return er.element(start, t.Copy())
		case xml.EndElement:
			return Stanza{}, ErrStreamClosed
		default:
			// Whitespace keepalives, and anything else that is not an element
			// (text at stream level is invalid, but not worth dying for).
			continue
		}
	}
}

// element reads the rest of the element whose start tag began at offset start.
func (er *ElementReader) element(start int64, se xml.StartElement) (Stanza, error) {
	for depth := 1; depth > 0; {
		tok, err := er.dec.Token()
		if err != nil {
			return Stanza{}, eofIsUnexpected(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
		if er.dec.InputOffset()-start > er.max {
			return Stanza{}, fmt.Errorf("xmppclient: <%s/> is larger than %d bytes", se.Name.Local, er.max)
		}
	}
	end := er.dec.InputOffset()
	raw := er.src.buf[start-er.dropped : end-er.dropped]
	st := Stanza{Name: se.Name, Raw: string(er.standalone(raw, se))}
	for _, a := range se.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		st.Attrs = append(st.Attrs, a)
	}
	return st, nil
}

// standalone copies onto the element's start tag the stream header's
// namespace declarations that the element needs and does not make itself.
func (er *ElementReader) standalone(raw []byte, se xml.StartElement) []byte {
	own := make(map[string]bool)
	for _, a := range se.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			own[""] = true
		case a.Name.Space == "xmlns":
			own[a.Name.Local] = true
		}
	}
	var add strings.Builder
	for _, d := range er.decls {
		if own[d.prefix] {
			continue
		}
		if d.prefix == "" {
			add.WriteString(" xmlns='")
		} else {
			// Only declare a prefix the element mentions; a cheap check that
			// may add an unused declaration, which is harmless.
			if !bytes.Contains(raw, []byte(d.prefix+":")) {
				continue
			}
			add.WriteString(" xmlns:" + d.prefix + "='")
		}
		add.WriteString(escape(d.uri))
		add.WriteString("'")
	}
	out := make([]byte, 0, len(raw)+add.Len())
	if add.Len() == 0 {
		return append(out, raw...)
	}
	i := 1 // raw[0] is '<'; the tag name ends at the first space, '/' or '>'
	for i < len(raw) && !strings.ContainsRune(" \t\r\n/>", rune(raw[i])) {
		i++
	}
	out = append(out, raw[:i]...)
	out = append(out, add.String()...)
	return append(out, raw[i:]...)
}

// trim forgets the bytes the decoder has consumed, keeping a byte it may
// have read and pushed back.
func (er *ElementReader) trim() {
	n := er.dec.InputOffset() - er.dropped
	if n <= 0 {
		return
	}
	er.src.buf = er.src.buf[:copy(er.src.buf, er.src.buf[n:])]
	er.dropped += n
}

// eofIsUnexpected reports the end of the input inside the stream as
// io.ErrUnexpectedEOF: encoding/xml gives io.EOF before the root element and
// a SyntaxError "unexpected EOF" inside it, and both mean the peer hung up
// without closing the stream.
func eofIsUnexpected(err error) error {
	var se *xml.SyntaxError
	if errors.Is(err, io.EOF) || (errors.As(err, &se) && se.Msg == "unexpected EOF") {
		return io.ErrUnexpectedEOF
	}
	return err
}

// recorder is the decoder's input: it keeps every byte the decoder takes, so
// that the raw bytes of an element can be cut out by decoder offsets.
type recorder struct {
	r   *bufio.Reader
	buf []byte
}

func (r *recorder) ReadByte() (byte, error) {
	b, err := r.r.ReadByte()
	if err == nil {
		r.buf = append(r.buf, b)
	}
	return b, err
}

// Read is never called by encoding/xml when ReadByte exists; it is here
// because NewDecoder takes an io.Reader, and keeps the record straight if it
// ever is.
func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}
