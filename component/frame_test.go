package component

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFramer(t *testing.T) {
	tests := [...]struct {
		in   string
		max  int
		want []string
		err  error
		over int
	}{
		0: {
			in:   `<message to='a' from='b'><body>x &lt; y</body></message> <presence from='a/b'/>` + "\n\t" + `<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []string{`<message to='a' from='b'><body>x &lt; y</body></message>`, `<presence from='a/b'/>`, `<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`},
			err:  io.EOF,
		},
		// '>' and '/' inside attribute values, both quote kinds.
		1: {
			in:   `<message id="a>b" x='/>'><b c="'">t</b></message>`,
			want: []string{`<message id="a>b" x='/>'><b c="'">t</b></message>`},
			err:  io.EOF,
		},
		// The server ends its stream.
		2: {
			in:   `<presence/></stream:stream>`,
			want: []string{`<presence/>`},
			err:  errStreamEnd,
		},
		// A stream error is an element like any other.
		3: {
			in:   `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`,
			want: []string{`<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`},
			err:  errStreamEnd,
		},
		// CDATA may hold markup.
		4: {
			in:   `<message><body><![CDATA[<not a tag> ]] ]>]]></body></message>`,
			want: []string{`<message><body><![CDATA[<not a tag> ]] ]>]]></body></message>`},
			err:  io.EOF,
		},
		// Oversized elements are skipped, the next one is read.
		5: {
			in:   `<message><body>` + strings.Repeat("x", 100) + `</body></message><presence/>`,
			max:  50,
			want: []string{`<presence/>`},
			err:  io.EOF,
			over: 1,
		},
		6: {in: `<message><body>cut`, err: io.ErrUnexpectedEOF},
		7: {in: `hello`, err: errMalformed{}},
		8: {in: `<!-- comment --><presence/>`, err: errMalformed{}},
		9: {in: `<?xml version='1.0'?>`, err: errMalformed{}},
		10: {
			in:   `<message a='1'` + strings.Repeat(" b='2'", 40) + `/>`,
			max:  64,
			err:  io.EOF,
			over: 1,
		},
	}
	for i, tc := range tests {
		for _, slow := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if slow {
				r = iotest.OneByteReader(r)
			}
			f := newFramer(bufio.NewReaderSize(r, 16), tc.max)
			var got []string
			var err error
			for {
				var el []byte
				if el, err = f.next(); err != nil {
					break
				}
				if el != nil { // nil: an element skipped for its size
					got = append(got, string(el))
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("%d: got %q, want %q", i, got, tc.want)
			}
			var m errMalformed
			if !errors.Is(err, tc.err) && !(errors.As(tc.err, &m) && errors.As(err, &m)) {
				t.Errorf("%d: error %v, want %v", i, err, tc.err)
			}
			if f.oversize != tc.over {
				t.Errorf("%d: oversize %d, want %d", i, f.oversize, tc.over)
			}
		}
	}
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte(`<message to='a'><body>x</body></message><presence/>`))
	f.Add([]byte(`<message id="a>b" x='/>'><b c="'">t</b></message>`))
	f.Add([]byte(`<m><![CDATA[<x>]]></m></stream:stream>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFramer(bufio.NewReader(strings.NewReader(string(in))), 256)
		total := 0
		for {
			el, err := fr.next()
			if err != nil {
				return
			}
			if len(el) == 0 || el[0] != '<' || el[len(el)-1] != '>' {
				t.Fatalf("element %q", el)
			}
			if len(el) > 256 {
				t.Fatalf("element of %d bytes over the limit", len(el))
			}
			if total += len(el); total > len(in) {
				t.Fatal("more bytes out than in")
			}
		}
	})
}
