package xmppclient

import (
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

const testHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
	"xmlns:stream='http://etherx.jabber.org/streams' id='s-1' from='localhost' version='1.0' xml:lang='en'>"

// testStream is what a server could send, and wantRaw what ElementReader must
// hand out for each top-level element: the same bytes, plus the stream's
// namespace declarations the element uses and does not declare itself.
var (
	testStream = testHeader +
		"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>" +
		" \n\t " + // whitespace keepalive
		"<message from='alice@localhost/a' to='bob@localhost' id='m1' xml:lang='en'><body>héllo &amp; &lt;bye&gt; ✓</body><x xmlns='urn:example:x' a=\"q'uote\"/></message>" +
		"<presence/>" +
		"<iq xmlns='jabber:client' type='result' id='i1'/>" +
		"<r xmlns='urn:xmpp:sm:3'/>" +
		"<message to='bob@localhost'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' id='in'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'/></message></forwarded></message>" +
		"</stream:stream>"
	wantRaw = []string{
		"<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
		"<message xmlns='jabber:client' from='alice@localhost/a' to='bob@localhost' id='m1' xml:lang='en'><body>héllo &amp; &lt;bye&gt; ✓</body><x xmlns='urn:example:x' a=\"q'uote\"/></message>",
		"<presence xmlns='jabber:client'/>",
		"<iq xmlns='jabber:client' type='result' id='i1'/>",
		"<r xmlns='urn:xmpp:sm:3'/>",
		"<message xmlns='jabber:client' to='bob@localhost'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' id='in'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'/></message></forwarded></message>",
	}
)

// chunkReader returns its input in the given chunk sizes (cycling), so that
// reads end in the middle of tags, attributes, entities and UTF-8 sequences.
type chunkReader struct {
	s     string
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := min(r.sizes[r.i%len(r.sizes)], len(p), len(r.s))
	r.i++
	copy(p, r.s[:n])
	r.s = r.s[n:]
	return n, nil
}

func TestElementReaderSplitReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]int, 64)
	for i := range random {
		random[i] = 1 + rng.IntN(17)
	}
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(testStream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(testStream)) },
		"odd":      func() io.Reader { return &chunkReader{s: testStream, sizes: []int{3, 7, 2, 11}} },
		"random":   func() io.Reader { return &chunkReader{s: testStream, sizes: random} },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(testStream)) },
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			er := NewElementReader(r())
			h, err := er.ReadHeader()
			if err != nil {
				t.Fatal(err)
			}
			if h.ID != "s-1" || h.From != "localhost" || h.Version != "1.0" || h.Lang != "en" || h.XMLNS != nsClient {
				t.Errorf("header = %+v", h)
			}
			for i, want := range wantRaw {
				st, err := er.Next()
				if err != nil {
					t.Fatalf("element %d: %v", i, err)
				}
				if st.Raw != want {
					t.Errorf("element %d:\n got %s\nwant %s", i, st.Raw, want)
				}
			}
			if _, err := er.Next(); !errors.Is(err, ErrStreamClosed) {
				t.Errorf("after the last element: err = %v, want ErrStreamClosed", err)
			}
		})
	}
}

func TestElementReaderStanzaFields(t *testing.T) {
	er := NewElementReader(strings.NewReader(testStream))
	if _, err := er.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := er.Next(); err != nil { // features
		t.Fatal(err)
	}
	st, err := er.Next()
	if err != nil {
		t.Fatal(err)
	}
	if st.Name.Space != nsClient || st.Name.Local != "message" {
		t.Errorf("Name = %v", st.Name)
	}
	if st.From() != "alice@localhost/a" || st.To() != "bob@localhost" || st.ID() != "m1" || st.Type() != "" {
		t.Errorf("attributes = %+v", st.Attrs)
	}
	for _, a := range st.Attrs {
		if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
			t.Errorf("namespace declaration %v among Attrs", a)
		}
	}
	// Raw stands on its own: namespaces resolve without the stream header.
	var m struct {
		Body string `xml:"jabber:client body"`
		X    struct {
			A string `xml:"a,attr"`
		} `xml:"urn:example:x x"`
	}
	if err := st.Unmarshal(&m); err != nil {
		t.Fatal(err)
	}
	if m.Body != "héllo & <bye> ✓" || m.X.A != "q'uote" {
		t.Errorf("decoded %+v", m)
	}
}

// TestElementReaderNoReadAhead checks that an element is returned as soon as
// it is complete, without waiting for more input: on a live stream the next
// bytes may never come.
func TestElementReaderNoReadAhead(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = io.WriteString(pw, testHeader+"<message id='x'><body>hi</body></message>")
		// and then nothing: the writer stays open
	}()
	er := NewElementReader(pr)
	got := make(chan error, 1)
	go func() {
		if _, err := er.ReadHeader(); err != nil {
			got <- err
			return
		}
		st, err := er.Next()
		if err == nil && st.ID() != "x" {
			err = errors.New("wrong element " + st.Raw)
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next blocked on a complete element")
	}
}

func TestElementReaderRestart(t *testing.T) {
	in := testHeader + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" +
		strings.Replace(testHeader, "s-1", "s-2", 1) + "<stream:features/>"
	er := NewElementReader(iotest.OneByteReader(strings.NewReader(in)))
	if _, err := er.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if st, err := er.Next(); err != nil || st.Name.Local != "success" {
		t.Fatalf("got %v, %v", st, err)
	}
	er.Reset()
	h, err := er.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != "s-2" {
		t.Errorf("second header id = %q", h.ID)
	}
	st, err := er.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := "<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>"; st.Raw != want {
		t.Errorf("got %s, want %s", st.Raw, want)
	}
}

func TestElementReaderErrors(t *testing.T) {
	tests := map[string]struct {
		in     string
		header bool // the error comes from ReadHeader
		want   string
	}{
		"not a stream":     {in: "<html>", header: true, want: "expected a stream header"},
		"eof in header":    {in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' ", header: true, want: "unexpected EOF"},
		"eof in element":   {in: testHeader + "<message><body>hi", want: "unexpected EOF"},
		"mismatched tags":  {in: testHeader + "<message><body>hi</message>", want: "element <body> closed by </message>"},
		"bad entity":       {in: testHeader + "<message>&nope;</message>", want: "invalid character entity"},
		"too large":        {in: testHeader + "<message>" + strings.Repeat("x", 5000) + "</message>", want: "larger than"},
		"eof after header": {in: testHeader, want: "unexpected EOF"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			er := NewElementReader(strings.NewReader(tc.in))
			er.SetMaxElementSize(4096)
			_, err := er.ReadHeader()
			if !tc.header {
				if err != nil {
					t.Fatalf("header: %v", err)
				}
				_, err = er.Next()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckWellFormed(t *testing.T) {
	good := []string{
		"<presence/>",
		"<message to='a@b'><body>x</body></message> <presence/>",
		"<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>",
	}
	for _, s := range good {
		if err := checkWellFormed(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := []string{"", "  ", "text", "<message>", "<a></b>", "<a/>tail", "<?xml version='1.0'?><a/>", "<a x='1' x='2'/"}
	for _, s := range bad {
		if err := checkWellFormed(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
}

func TestInsertAttr(t *testing.T) {
	for in, want := range map[string]string{
		"<iq type='get'/>":        "<iq id='x&amp;' type='get'/>",
		"<iq/>":                   "<iq id='x&amp;'/>",
		"  <iq>\n<a/></iq>":       "  <iq id='x&amp;'>\n<a/></iq>",
		"<iq\ttype='set'></iq>":   "<iq id='x&amp;'\ttype='set'></iq>",
		"<iq><query/></iq><iq/>":  "<iq id='x&amp;'><query/></iq><iq/>",
		"<iq type='get' >x</iq>":  "<iq id='x&amp;' type='get' >x</iq>",
		"<iq type='a/b'></iq>":    "<iq id='x&amp;' type='a/b'></iq>",
		"<iq\ntype='get'/>":       "<iq id='x&amp;'\ntype='get'/>",
		"<iq  type=\"get\"></iq>": "<iq id='x&amp;'  type=\"get\"></iq>",
	} {
		if got := insertAttr(in, "id", "x&"); got != want {
			t.Errorf("insertAttr(%q) = %q, want %q", in, got, want)
		}
	}
}
