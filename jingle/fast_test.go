package jingle_test

import (
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
)

// checkFastSlow fails if fast handles raw but slow rejects it or reads it
// differently. It reports whether fast handled raw.
func checkFastSlow[T any](t *testing.T, raw []byte, fast func([]byte) (T, bool), slow func([]byte) (T, error)) bool {
	t.Helper()
	got, ok := fast(raw)
	if !ok {
		return false
	}
	want, err := slow(raw)
	if err != nil {
		t.Fatalf("fast path accepted %q, slow path says %v", raw, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q\nfast %+v\nslow %+v", raw, got, want)
	}
	return true
}

// checkCallFastSlow is checkFastSlow for ParseCall, whose fast path must
// also agree with Classify (which ParseCall asks first).
func checkCallFastSlow(t *testing.T, raw []byte) bool {
	t.Helper()
	ok := checkFastSlow(t, raw, jingle.ParseCallFast, jingle.ParseCallSlow)
	if k := jingle.Classify(raw); ok && k != jingle.KindCall {
		t.Fatalf("fast path accepted %q, which Classify calls %v", raw, k)
	}
	return ok
}

func checkPresenceFastSlow(t *testing.T, raw []byte) bool {
	t.Helper()
	return checkFastSlow(t, raw, jingle.ParsePresenceFast, jingle.ParsePresenceSlow)
}

// addFastSlowSeeds adds testdata and scannerShapes to a fuzz corpus.
func addFastSlowSeeds(f *testing.F) {
	addSeeds(f)
	for _, tc := range scannerShapes {
		f.Add([]byte(tc.raw))
	}
}

func FuzzParseCallFastSlow(f *testing.F) {
	addFastSlowSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) { checkCallFastSlow(t, raw) })
}

func FuzzParsePresenceFastSlow(f *testing.F) {
	addFastSlowSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) { checkPresenceFastSlow(t, raw) })
}

// The fast paths must take the stanzas of real traffic: the captured
// proposes, the other JMI signals and the presences. Everything else in
// testdata may go either way, but never differently from the slow path.
func TestFastPathTestdata(t *testing.T) {
	mustCall := map[string]bool{}
	for _, name := range []string{
		"prosody-fw-deliver-propose.xml", "prosody-fw-offline-propose.xml", "prosody-fw-hibernated-propose.xml",
		"prosody-hibtimeout-propose-again.xml", "prosody13-fw-hibernated-propose.xml", "prosody-undeliverable-propose.xml",
		"ejabberd-servicelog-propose.xml", "ejabberd-servicelog-propose-offline-replay.xml", "ejabberd-servicelog-propose-mam-replay.xml",
		"jmi-retract.xml", "jmi-accept.xml", "jmi-proceed.xml", "jmi-reject-busy.xml", "jmi-finish.xml", "jmi-ringing.xml",
		"jmi-propose-video.xml", "jmi-propose-pretty.xml", "jmi-propose-legacy-delay.xml",
	} {
		mustCall[name] = true
	}
	mustPresence := map[string]bool{}
	for _, name := range []string{
		"prosody-presence-snapshot.xml", "prosody-presence-available.xml", "prosody-presence-unavailable.xml",
		"prosody-presence-hibernation-expired.xml", "ejabberd-presence-available.xml", "ejabberd-presence-unavailable.xml",
		"ejabberd-presence-roster-delay.xml",
	} {
		mustPresence[name] = true
	}
	for _, name := range testdataFiles(t) {
		t.Run(name, func(t *testing.T) {
			raw := testdata(t, name)
			if handled := checkCallFastSlow(t, raw); mustCall[name] && !handled {
				t.Error("the fast path of ParseCall left it to the slow path")
			}
			if handled := checkPresenceFastSlow(t, raw); mustPresence[name] && !handled {
				t.Error("the fast path of ParsePresence left it to the slow path")
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

// scannerShapes are variations of shapeCall and shapePresence, each either
// taken by the fast path (fast) or deliberately left to the slow one.
var scannerShapes = [...]struct {
	name string
	raw  string
	fast bool
}{
	{"call", shapeCall, true},
	{"presence", shapePresence, true},
	{"double quotes", strings.ReplaceAll(shapeCall, "'", `"`), true},
	{"spaces around =", strings.Replace(shapeCall, "id='call1'", "id = 'call1'", 1), true},
	{"newlines in tags", strings.ReplaceAll(shapeCall, "' ", "'\n\t"), true},
	{"indented", strings.ReplaceAll(shapeCall, "><", ">\n  <"), true},
	{"leading and trailing space", " \n" + shapeCall + "\n", true},
	{"end tag with space", strings.Replace(shapeCall, "</propose>", "</propose >", 1), true},
	{"quote of the other kind in a value", strings.Replace(shapeCall, "id='m1'", `id='m"1'`, 1), true},
	{"> in a value", strings.Replace(shapeCall, "id='m1'", `id='m>1'`, 1), true},
	{"> in text", shapeHead + shapeJMI + "<body>a > b</body>" + shapeTail, true},
	{"non-ASCII text", shapeHead + shapeJMI + "<body>grüß 📞</body>" + shapeTail, true},
	{"non-ASCII JID", strings.Replace(shapeCall, "alice@", "älice@", 1), true},
	{"xmlns reset", shapeHead + shapeJMI + "<x xmlns=''><y/></x>" + shapeTail, true},
	{"reason", shapeHead + `<reject xmlns='urn:xmpp:jingle-message:0' id='call1'><reason xmlns='urn:xmpp:jingle:1'><text>x</text><busy/></reason></reject>` + shapeTail, true},
	{"empty status", strings.Replace(shapePresence, "<status>Away</status>", "<status/>", 1), true},

	{"entity", shapeHead + shapeJMI + "<body>a &amp; b</body>" + shapeTail, false},
	{"character reference", strings.Replace(shapeCall, "call1", "call&#49;", 1), false},
	{"CDATA", shapeHead + shapeJMI + "<body><![CDATA[x]]></body>" + shapeTail, false},
	{"comment", shapeHead + "<!-- x -->" + shapeJMI + shapeTail, false},
	{"processing instruction", "<?xml version='1.0'?>" + shapeCall, false},
	{"prefixed element", strings.Replace(shapeCall, "<store xmlns='urn:xmpp:hints'/>", "<h:store xmlns:h='urn:xmpp:hints'/>", 1), false},
	{"prefixed attribute", strings.Replace(shapeCall, "id='m1'", "id='m1' x:y='z'", 1), false},
	{"carriage return", strings.ReplaceAll(shapeCall, "><", ">\r\n<"), false},
	{"control character", shapeHead + shapeJMI + "<body>\x01</body>" + shapeTail, false},
	{"invalid UTF-8", shapeHead + shapeJMI + "<body>\xff</body>" + shapeTail, false},
	{"non-character", shapeHead + shapeJMI + "<body>\uffff</body>" + shapeTail, false},
	{"duplicate attribute", strings.Replace(shapeCall, "id='call1'", "id='call1' id='call2'", 1), false},
	{"no space between attributes", strings.Replace(shapeCall, "id='call1'", "id='call1'x='y'", 1), false},
	{"unquoted attribute", strings.Replace(shapeCall, "id='call1'", "id=call1", 1), false},
	{"< in a value", strings.Replace(shapeCall, "id='m1'", "id='m<1'", 1), false},
	{"]]> in text", shapeHead + shapeJMI + "<body>]]></body>" + shapeTail, false},
	{"mismatched end", strings.Replace(shapeCall, "</propose>", "</proposal>", 1), false},
	{"unclosed", strings.TrimSuffix(shapeCall, "</message>"), false},
	{"data after the root", shapeCall + "<message/>", false},
	{"text after the root", shapeCall + "x", false},
	{"element named xmlns", shapeHead + `<retract xmlns='urn:xmpp:jingle-message:0' id='call1'><reason xmlns='urn:xmpp:jingle:1'><xmlns/></reason></retract>` + shapeTail, false},
	{"too deep", shapeHead + shapeJMI + strings.Repeat("<a>", 16) + strings.Repeat("</a>", 16) + shapeTail, false},
	{"too many attributes", strings.Replace(shapeCall, "<store", "<store a='' b='' c='' d='' e='' f='' g='' h='' i='' j='' k='' l='' m='' n='' o='' p=''", 1), false},
	{"long attribute", strings.Replace(shapeCall, "id='m1'", "x='"+strings.Repeat("a", 3073)+"' id='m1'", 1), false},
	{"status with children", strings.Replace(shapePresence, "<status>Away</status>", "<status>A<b/>way</status>", 1), false},
	{"forwarded iq", `<message to='push.localhost' from='localhost'><forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='set' id='i' from='alice@localhost/spike' to='bob@localhost/phone'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'/></iq></forwarded></message>`, false},
	{"bad id", strings.Replace(shapeCall, "id='call1'", "id=''", 1), false},
	{"bad JID", strings.Replace(shapeCall, "alice@localhost", "alice@@localhost", 1), false},
}

func TestScannerShapes(t *testing.T) {
	for _, tc := range scannerShapes {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			got := checkCallFastSlow(t, raw)
			if strings.Contains(tc.raw, "<presence") {
				got = checkPresenceFastSlow(t, raw)
			}
			if got != tc.fast {
				t.Errorf("fast path handled it: %v, want %v", got, tc.fast)
			}
		})
	}
}

// The fast paths exist to save allocations: keep them from creeping back.
// Most of those left are mellium's, normalising the JIDs; what is counted
// here is the rest: the copy of the stanza and the media list.
func TestFastPathAllocs(t *testing.T) {
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
