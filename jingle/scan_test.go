package jingle_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
)

// oracle reads raw with encoding/xml, the reference the scanner is held to.
// It returns the tokens of the one root element (adjacent character data
// merged, nothing outside the root), and whether raw is a document the
// scanner must read too: one element, only whitespace around it, and
// nothing but elements and text inside.
func oracle(raw []byte) (toks []xml.Token, plain bool, err error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	plain = true
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return toks, plain && roots == 1, nil
		}
		if err != nil {
			return nil, false, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			toks = append(toks, t.Copy())
		case xml.EndElement:
			depth--
			toks = append(toks, t)
		case xml.CharData:
			if depth == 0 {
				plain = plain && len(bytes.Trim(t, " \t\r\n")) == 0
				continue
			}
			if len(t) == 0 {
				continue // an empty CDATA section
			}
			if n := len(toks); n > 0 {
				if prev, ok := toks[n-1].(xml.CharData); ok {
					toks[n-1] = append(prev, t...)
					continue
				}
			}
			toks = append(toks, t.Copy())
		default: // comments, processing instructions, directives
			plain = false
		}
	}
}

// checkScanner fails unless the scanner reads raw exactly as encoding/xml
// does, or refuses it for a reason of its own (IsRefusal) or because
// encoding/xml cannot read it either. It reports whether the scanner read
// raw.
func checkScanner(t *testing.T, raw []byte) bool {
	t.Helper()
	got, err := jingle.ScanTokens(raw)
	want, plain, oerr := oracle(raw)
	switch {
	case err == nil && oerr != nil:
		t.Fatalf("the scanner read %q, encoding/xml says %v", raw, oerr)
	case err == nil && !plain:
		t.Fatalf("the scanner read %q, which holds more than one plain element", raw)
	case err == nil && !reflect.DeepEqual(canon(got), canon(want)):
		t.Fatalf("%q\nscanner      %q\nencoding/xml %q", raw, canon(got), canon(want))
	case err != nil && !errors.Is(err, jingle.ErrMalformed):
		t.Fatalf("scanner error %v is not ErrMalformed", err)
	case err != nil && oerr == nil && plain && !jingle.IsRefusal(err):
		t.Fatalf("the scanner failed on %q, which encoding/xml reads: %v", raw, err)
	}
	return err == nil
}

// canon writes tokens as comparable strings.
func canon(toks []xml.Token) []string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		switch t := tok.(type) {
		case xml.StartElement:
			s := "<{" + t.Name.Space + "}" + t.Name.Local
			for _, a := range t.Attr {
				s += " {" + a.Name.Space + "}" + a.Name.Local + "=" + strconv.Quote(a.Value)
			}
			out[i] = s + ">"
		case xml.EndElement:
			out[i] = "</{" + t.Name.Space + "}" + t.Name.Local + ">"
		case xml.CharData:
			out[i] = strconv.Quote(string(t))
		default:
			out[i] = fmt.Sprintf("%T", tok)
		}
	}
	return out
}

func FuzzScanner(f *testing.F) {
	addSeeds(f)
	for _, tc := range scannerShapes {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkScanner(t, raw) })
}

// Every captured stanza is read the same way as encoding/xml reads it.
func TestScannerTestdata(t *testing.T) {
	for _, name := range testdataFiles(t) {
		t.Run(name, func(t *testing.T) {
			raw := testdata(t, name)
			// A stream error's prefix is declared in the stream header: no
			// parser reads it.
			if !checkScanner(t, raw) && !strings.HasPrefix(name, "malformed-") && name != "ejabberd-stream-error.xml" {
				t.Error("the scanner refused a stanza that is not marked malformed")
			}
		})
	}
}

const (
	// A propose as Prosody forwards it, in two pieces around the JMI element.
	shapeHead = `<message to='push.localhost' from='localhost'><forwarded xmlns='urn:xmpp:forward:0'>` +
		`<message type='chat' to='bob@localhost' xmlns='jabber:client' from='alice@localhost/spike' xml:lang='en' id='m1'>`
	shapeJMI  = `<propose xmlns='urn:xmpp:jingle-message:0' id='call1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>`
	shapeTail = `<store xmlns='urn:xmpp:hints'/></message></forwarded></message>`
	shapeCall = shapeHead + shapeJMI + shapeTail
	// A presence as Prosody sends it.
	shapePresence = `<presence to='push.localhost' id='p1' xml:lang='en' from='bob@localhost/spike'>` +
		`<status>Away</status><delay xmlns='urn:xmpp:delay' stamp='2026-11-22T04:20:37Z' from='localhost'/></presence>`
)

// How the scanner takes a shape.
const (
	read    = iota // as encoding/xml does
	refused        // IsRefusal: XMPP, namespaces or a limit
	broken         // not XML: encoding/xml refuses it too
)

// scannerShapes are variations of shapeCall and shapePresence: every XML
// construct a server may send, and the ones it may not.
var scannerShapes = [...]struct {
	name string
	raw  string
	want int
}{
	{"call", shapeCall, read},
	{"presence", shapePresence, read},
	{"double quotes", strings.ReplaceAll(shapeCall, "'", `"`), read},
	{"spaces around =", strings.Replace(shapeCall, "id='call1'", "id = 'call1'", 1), read},
	{"newlines in tags", strings.ReplaceAll(shapeCall, "' ", "'\n\t"), read},
	{"indented", strings.ReplaceAll(shapeCall, "><", ">\n  <"), read},
	{"carriage returns", strings.ReplaceAll(shapeCall, "><", ">\r\n<"), read},
	{"carriage return in a value", strings.Replace(shapeCall, "id='m1'", "id='m\r\n1\r'", 1), read},
	{"leading and trailing space", " \n" + shapeCall + "\n", read},
	{"end tag with space", strings.Replace(shapeCall, "</propose>", "</propose \n>", 1), read},
	{"quote of the other kind in a value", strings.Replace(shapeCall, "id='m1'", `id='m"1'`, 1), read},
	{"> in a value", strings.Replace(shapeCall, "id='m1'", `id='m>1'`, 1), read},
	{"> in text", withChild("<body>a > b</body>"), read},
	{"non-ASCII text", withChild("<body>grüß 📞</body>"), read},
	{"non-ASCII JID", strings.Replace(shapeCall, "alice@", "älice@", 1), read},
	{"xmlns reset", withChild("<x xmlns=''><y/></x>"), read},
	{"reason", shapeHead + `<reject xmlns='urn:xmpp:jingle-message:0' id='call1'><reason xmlns='urn:xmpp:jingle:1'><text>x</text><busy/></reason></reject>` + shapeTail, read},
	{"empty status", strings.Replace(shapePresence, "<status>Away</status>", "<status/>", 1), read},
	{"entities", withChild("<body>a &amp; b &lt;c&gt; &apos;d&apos; &quot;e&quot;</body>"), read},
	{"bad character reference", strings.Replace(shapeCall, "call1", "c&#X31;", 1), broken},
	{"character references in a value", strings.Replace(shapeCall, "call1", "c&#97;ll&#x31;", 1), read},
	{"astral character reference", withChild("<body>&#x1F4DE;&#128222;</body>"), read},
	{"entity in a value", strings.Replace(shapeCall, "id='m1'", "id='m&amp;1&apos;'", 1), read},
	{"CDATA", withChild("<body>a<![CDATA[<b> & ]]]]>c</body>"), read},
	{"CDATA with a carriage return", withChild("<body><![CDATA[a\r\nb\rc]]></body>"), read},
	{"text around a child", strings.Replace(shapePresence, "<status>Away</status>", "<status>A<b/>w<c>x</c>ay</status>", 1), read},
	{"prefixed elements", strings.Replace(shapeCall, "<store xmlns='urn:xmpp:hints'/>", "<h:store xmlns:h='urn:xmpp:hints'><h:x/></h:store>", 1), read},
	{"prefixed attribute", strings.Replace(shapeCall, "id='m1'", "id='m1' xmlns:x='urn:x' x:y='z'", 1), read},
	{"prefix declared after its use", strings.Replace(shapeCall, "id='m1'", "x:y='z' id='m1' xmlns:x='urn:x'", 1), read},
	{"prefix shadowed", withChild("<a:x xmlns:a='urn:1'><a:y xmlns:a='urn:2'/><a:z/></a:x>"), read},
	{"xml prefix declared", strings.Replace(shapeCall, "id='m1'", "id='m1' xmlns:xml='http://www.w3.org/XML/1998/namespace'", 1), read},
	{"whole stanza prefixed", `<c:presence xmlns:c='jabber:client' from='bob@localhost/spike'><c:status>x</c:status></c:presence>`, read},
	{"forwarded iq", `<message to='push.localhost' from='localhost'><forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='set' id='i' from='alice@localhost/spike' to='bob@localhost/phone'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'/></iq></forwarded></message>`, read},
	{"bad id", strings.Replace(shapeCall, "id='call1'", "id=''", 1), read},
	{"bad JID", strings.Replace(shapeCall, "alice@localhost", "alice@@localhost", 1), read},

	{"comment", shapeHead + "<!-- x -->" + shapeJMI + shapeTail, refused},
	{"processing instruction", "<?xml version='1.0'?>" + shapeCall, refused},
	{"DTD", "<!DOCTYPE message>" + shapeCall, refused},
	{"text before", "x" + shapeCall, refused},
	{"data after the root", shapeCall + "<message/>", refused},
	{"text after the root", shapeCall + "x", refused},
	{"undeclared prefix", strings.Replace(shapeCall, "<store xmlns='urn:xmpp:hints'/>", "<h:store/>", 1), refused},
	{"undeclared attribute prefix", strings.Replace(shapeCall, "id='m1'", "id='m1' x:y='z'", 1), refused},
	{"prefix out of scope", withChild("<a:x xmlns:a='urn:1'/><a:y/>"), refused},
	{"prefix undeclared", withChild("<a:x xmlns:a='urn:1'><a:y xmlns:a=''/></a:x>"), refused},
	{"xmlns prefix bound", withChild("<x xmlns:xmlns='urn:1'/>"), refused},
	{"xml prefix rebound", withChild("<x xmlns:xml='urn:1'/>"), refused},
	{"element named xmlns", shapeHead + `<retract xmlns='urn:xmpp:jingle-message:0' id='call1'><reason xmlns='urn:xmpp:jingle:1'><xmlns/></reason></retract>` + shapeTail, refused},
	{"element prefixed xmlns", withChild("<xmlns:x/>"), refused},
	{"name with two colons", withChild("<a:b:c xmlns:a='urn:1'/>"), refused},
	{"name ending in a colon", withChild("<a: xmlns:a='urn:1'/>"), refused},
	{"local name starting with a digit", withChild("<a:1 xmlns:a='urn:1'/>"), refused},
	{"non-ASCII name", withChild("<grüß/>"), refused},
	{"duplicate attribute", strings.Replace(shapeCall, "id='call1'", "id='call1' id='call2'", 1), refused},
	{"duplicate attribute after prefixes", strings.Replace(shapeCall, "id='m1'", "id='m1' xmlns:a='urn:x' xmlns:b='urn:x' a:y='1' b:y='2'", 1), refused},
	{"no space between attributes", strings.Replace(shapeCall, "id='call1'", "id='call1'x='y'", 1), refused},
	{"reference to a surrogate", strings.Replace(shapeCall, "id='m1'", "id='&#xD800;'", 1), refused},
	{"too deep", withChild(strings.Repeat("<a>", 64) + strings.Repeat("</a>", 64)), refused},
	{"long attribute", strings.Replace(shapeCall, "id='m1'", "x='"+strings.Repeat("a", 3073)+"' id='m1'", 1), refused},
	{"too many attributes", strings.Replace(shapeCall, "<store", "<store"+attrs(65), 1), refused},

	{"many attributes", strings.Replace(shapeCall, "<store", "<store"+attrs(40), 1), read},
	{"unknown entity", withChild("<body>&bogus;</body>"), broken},
	{"bare ampersand", withChild("<body>a & b</body>"), broken},
	{"reference to NUL", withChild("<body>&#0;</body>"), broken},
	{"control character", withChild("<body>\x01</body>"), broken},
	{"invalid UTF-8", withChild("<body>\xff</body>"), broken},
	{"non-character", withChild("<body>\uffff</body>"), broken},
	{"unquoted attribute", strings.Replace(shapeCall, "id='call1'", "id=call1", 1), broken},
	{"< in a value", strings.Replace(shapeCall, "id='m1'", "id='m<1'", 1), broken},
	{"]]> in text", withChild("<body>]]></body>"), broken},
	{"unclosed CDATA", withChild("<body><![CDATA[x</body>"), broken},
	{"mismatched end", strings.Replace(shapeCall, "</propose>", "</proposal>", 1), broken},
	{"unclosed", strings.TrimSuffix(shapeCall, "</message>"), broken},
	{"empty", "", broken},
}

// withChild is shapeCall with child after the propose.
func withChild(child string) string { return shapeHead + shapeJMI + child + shapeTail }

// attrs returns n distinct attributes.
func attrs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(" a")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("='1'")
	}
	return b.String()
}

func TestScannerShapes(t *testing.T) {
	for _, tc := range scannerShapes {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			ok := checkScanner(t, raw)
			_, err := jingle.ScanTokens(raw)
			got := read
			switch {
			case ok:
			case jingle.IsRefusal(err):
				got = refused
			default:
				got = broken
			}
			if got != tc.want {
				t.Errorf("taken as %d, want %d: %v", got, tc.want, err)
			}
		})
	}
}

// The scanner exists to save allocations: keep them from creeping back.
// Most of those left are mellium's, normalising the JIDs; what is counted
// here is the rest: the copy of the stanza and the media list.
func TestParseAllocs(t *testing.T) {
	call := testdata(t, "prosody-fw-hibernated-propose.xml")
	ev, err := jingle.ParseCall(call)
	if err != nil {
		t.Fatal(err)
	}
	presence := testdata(t, "prosody-presence-snapshot.xml")
	p, err := jingle.ParsePresence(presence)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range [...]struct {
		name  string
		parse func()
		jids  []jid.JID
		max   float64
	}{
		{"ParseCall", func() { jingle.ParseCall(call) }, []jid.JID{ev.Wrapper.From, ev.Wrapper.To, ev.From, ev.To}, 2},
		{"ParsePresence", func() { jingle.ParsePresence(presence) }, []jid.JID{p.From, p.To}, 1},
	} {
		jids := make([]string, len(tc.jids))
		for i, j := range tc.jids {
			jids[i] = j.String()
		}
		mellium := testing.AllocsPerRun(100, func() {
			for _, s := range jids {
				jid.Parse(s)
			}
		})
		if own := testing.AllocsPerRun(100, tc.parse) - mellium; own > tc.max {
			t.Errorf("%s: %v allocations besides the JIDs' %v, want at most %v", tc.name, own, mellium, tc.max)
		}
	}
}
