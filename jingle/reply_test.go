package jingle_test

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglepush/jinglepush/jingle"
)

// encode writes a token stream as XML.
func encode(tb testing.TB, r xml.TokenReader) string {
	tb.Helper()
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, r); err != nil {
		tb.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}

// request is what the component received; replies are built from it.
var requestIQ = stanza.IQ{
	ID:   "q1",
	Type: stanza.GetIQ,
	From: jid.MustParse("bob@localhost/phone"),
	To:   jid.MustParse("push.localhost"),
}

// roundTrip wraps payload in a result to requestIQ, encodes it and parses it
// back with ParseIQ.
func roundTrip(tb testing.TB, payload xml.TokenReader) (string, jingle.IQ) {
	tb.Helper()
	raw := encode(tb, requestIQ.Result(payload))
	iq, err := jingle.ParseIQ([]byte(raw))
	if err != nil {
		tb.Fatalf("ParseIQ(%s): %v", raw, err)
	}
	if iq.Type != stanza.ResultIQ || iq.ID != "q1" || iq.To.String() != "bob@localhost/phone" || iq.From.String() != "push.localhost" {
		tb.Errorf("reply header %+v", iq.IQ)
	}
	return raw, iq
}

func TestDiscoInfo(t *testing.T) {
	raw, iq := roundTrip(t, jingle.DiscoInfo("pubsub", "push", "jinglepush", []string{
		jingle.NSVersion, jingle.NSPush, jingle.NSCommands, jingle.NSPing, jingle.NSPush, "",
	}))
	if iq.Payload != jingle.PayloadDiscoInfo || iq.Node != "" {
		t.Errorf("payload %v node %q", iq.Payload, iq.Node)
	}
	var q struct {
		Identity []struct {
			Category string `xml:"category,attr"`
			Type     string `xml:"type,attr"`
			Name     string `xml:"name,attr"`
		} `xml:"http://jabber.org/protocol/disco#info query>identity"`
		Features []struct {
			Var string `xml:"var,attr"`
		} `xml:"http://jabber.org/protocol/disco#info query>feature"`
	}
	if err := xml.Unmarshal([]byte(raw), &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Identity) != 1 || q.Identity[0].Category != "pubsub" || q.Identity[0].Type != "push" || q.Identity[0].Name != "jinglepush" {
		t.Errorf("identity %+v", q.Identity)
	}
	var features []string
	for _, f := range q.Features {
		features = append(features, f.Var)
	}
	want := []string{jingle.NSCommands, jingle.NSVersion, jingle.NSPing, jingle.NSPush}
	if !reflect.DeepEqual(features, want) {
		t.Errorf("features\n got %q\nwant %q", features, want)
	}
	const wantXML = `<iq type="result" to="bob@localhost/phone" from="push.localhost" id="q1">` +
		`<query xmlns="http://jabber.org/protocol/disco#info"><identity category="pubsub" type="push" name="jinglepush"></identity>` +
		`<feature var="http://jabber.org/protocol/commands"></feature><feature var="jabber:iq:version"></feature>` +
		`<feature var="urn:xmpp:ping"></feature><feature var="urn:xmpp:push:0"></feature></query></iq>`
	if raw != wantXML {
		t.Errorf("disco#info\n got %s\nwant %s", raw, wantXML)
	}
}

func TestDiscoItems(t *testing.T) {
	push := jid.MustParse("push.localhost")
	raw, iq := roundTrip(t, jingle.DiscoItems(jingle.NodeCommands,
		jingle.Item{JID: push, Node: "register-push-apns", Name: "Register a device for VoIP pushes"},
		jingle.Item{JID: push, Node: "unregister-push-apns", Name: "Unregister a device & its tokens"},
	))
	if iq.Payload != jingle.PayloadDiscoItems || iq.Node != jingle.NodeCommands {
		t.Errorf("payload %v node %q", iq.Payload, iq.Node)
	}
	var q struct {
		Node  string `xml:"node,attr"`
		Items []struct {
			JID  string `xml:"jid,attr"`
			Node string `xml:"node,attr"`
			Name string `xml:"name,attr"`
		} `xml:"item"`
	}
	inner := raw[bytes.Index([]byte(raw), []byte("<query")) : len(raw)-len("</iq>")]
	if err := xml.Unmarshal([]byte(inner), &q); err != nil {
		t.Fatal(err)
	}
	if q.Node != jingle.NodeCommands || len(q.Items) != 2 || q.Items[1].Name != "Unregister a device & its tokens" ||
		q.Items[0].JID != "push.localhost" || q.Items[0].Node != "register-push-apns" {
		t.Errorf("items %+v", q)
	}
	// Node-less, empty.
	if got := encode(t, jingle.DiscoItems("")); got != `<query xmlns="http://jabber.org/protocol/disco#items"></query>` {
		t.Errorf("empty items: %s", got)
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range [...]struct {
		name, version, os string
		want              string
	}{
		0: {"jinglepush", "1.2.3", "linux", `<query xmlns="jabber:iq:version"><name>jinglepush</name><version>1.2.3</version><os>linux</os></query>`},
		1: {"jinglepush", "dev", "", `<query xmlns="jabber:iq:version"><name>jinglepush</name><version>dev</version></query>`},
	} {
		raw, iq := roundTrip(t, jingle.Version(tc.name, tc.version, tc.os))
		if iq.Payload != jingle.PayloadVersion {
			t.Errorf("payload %v", iq.Payload)
		}
		if got := encode(t, jingle.Version(tc.name, tc.version, tc.os)); got != tc.want {
			t.Errorf("Version\n got %s\nwant %s (in %s)", got, tc.want, raw)
		}
	}
}

func TestPong(t *testing.T) {
	if jingle.Pong() != nil {
		t.Fatal("Pong is not nil")
	}
	_, iq := roundTrip(t, jingle.Pong())
	if iq.Payload != jingle.PayloadNone {
		t.Errorf("payload %v", iq.Payload)
	}
}

var commandResponseTests = [...]struct {
	reply jingle.CommandReply
	want  jingle.Command // as ParseIQ reads it back
	xml   string
}{
	0: {
		reply: jingle.CommandReply{
			Node: "register-push-apns", SessionID: "s-1", Status: jingle.StatusExecuting,
			Form: &jingle.FormSpec{
				FormType: "urn:jinglepush:register:0", Title: "Register", Instructions: "Tokens are hex.",
				Fields: []jingle.Field{
					{Var: "device-id", Type: "text-single", Label: "Device", Required: true},
					{Var: "voip-token", Type: "text-single", Label: "PushKit token"},
					{Var: "environment", Type: "list-single", Values: []string{"production"}},
				},
			},
		},
		want: jingle.Command{Node: "register-push-apns", Action: "execute", SessionID: "s-1", Status: "executing", Form: jingle.Form{
			Type: "form", FormType: "urn:jinglepush:register:0",
			Fields: map[string][]string{"device-id": {}, "voip-token": {}, "environment": {"production"}},
		}},
		xml: `<command xmlns="http://jabber.org/protocol/commands" node="register-push-apns" sessionid="s-1" status="executing">` +
			`<actions execute="complete"><complete></complete></actions>` +
			`<x xmlns="jabber:x:data" type="form"><title>Register</title><instructions>Tokens are hex.</instructions>` +
			`<field var="FORM_TYPE" type="hidden"><value>urn:jinglepush:register:0</value></field>` +
			`<field var="device-id" type="text-single" label="Device"><required></required></field>` +
			`<field var="voip-token" type="text-single" label="PushKit token"></field>` +
			`<field var="environment" type="list-single"><value>production</value></field></x></command>`,
	},
	1: {
		reply: jingle.CommandReply{
			Node: "register-push-apns", Status: jingle.StatusCompleted,
			Note: jingle.Note{Text: "Registered <phone> & ready"},
			Form: &jingle.FormSpec{Type: "result", Fields: []jingle.Field{
				{Var: "jid", Type: "jid-single", Values: []string{"push.localhost"}},
				{Var: "node", Values: []string{"n-123"}},
				{Var: "secret", Type: "text-private", Values: []string{"c2VjcmV0"}},
			}},
		},
		want: jingle.Command{Node: "register-push-apns", Action: "execute", Status: "completed", Form: jingle.Form{
			Type: "result", Fields: map[string][]string{"jid": {"push.localhost"}, "node": {"n-123"}, "secret": {"c2VjcmV0"}},
		}},
		xml: `<command xmlns="http://jabber.org/protocol/commands" node="register-push-apns" status="completed">` +
			`<note type="info">Registered &lt;phone&gt; &amp; ready</note>` +
			`<x xmlns="jabber:x:data" type="result"><field var="jid" type="jid-single"><value>push.localhost</value></field>` +
			`<field var="node"><value>n-123</value></field><field var="secret" type="text-private"><value>c2VjcmV0</value></field></x></command>`,
	},
	2: {
		reply: jingle.CommandReply{Node: "register-push-apns", SessionID: "s-1", Status: jingle.StatusCanceled},
		want:  jingle.Command{Node: "register-push-apns", Action: "execute", SessionID: "s-1", Status: "canceled"},
		xml:   `<command xmlns="http://jabber.org/protocol/commands" node="register-push-apns" sessionid="s-1" status="canceled"></command>`,
	},
	3: {
		reply: jingle.CommandReply{Node: "x", Status: jingle.StatusExecuting, Actions: []string{"next", "complete"},
			Note: jingle.Note{Type: jingle.NoteWarn, Text: "careful"}},
		want: jingle.Command{Node: "x", Action: "execute", Status: "executing"},
		xml: `<command xmlns="http://jabber.org/protocol/commands" node="x" status="executing">` +
			`<actions execute="next"><next></next><complete></complete></actions><note type="warn">careful</note></command>`,
	},
	4: {
		reply: jingle.CommandReply{Node: "x", Status: jingle.StatusCompleted, Note: jingle.Note{Type: jingle.NoteError, Text: "no"}},
		want:  jingle.Command{Node: "x", Action: "execute", Status: "completed"},
		xml:   `<command xmlns="http://jabber.org/protocol/commands" node="x" status="completed"><note type="error">no</note></command>`,
	},
}

func TestCommandResponse(t *testing.T) {
	for i, tc := range commandResponseTests {
		if got := encode(t, jingle.CommandResponse(tc.reply)); got != tc.xml {
			t.Errorf("%d: CommandResponse\n got %s\nwant %s", i, got, tc.xml)
		}
		_, iq := roundTrip(t, jingle.CommandResponse(tc.reply))
		if iq.Payload != jingle.PayloadCommand || iq.Command == nil {
			t.Fatalf("%d: payload %v", i, iq.Payload)
		}
		if !reflect.DeepEqual(*iq.Command, tc.want) {
			t.Errorf("%d: parsed back\n got %+v\nwant %+v", i, *iq.Command, tc.want)
		}
	}
}

// A field's label and required flag survive a trip through encoding/xml.
func TestFormSpecTokenReader(t *testing.T) {
	spec := jingle.FormSpec{Fields: []jingle.Field{{Var: "device-id", Label: "Device ID", Required: true}}}
	var x struct {
		Type   string `xml:"type,attr"`
		Fields []struct {
			Var      string    `xml:"var,attr"`
			Label    string    `xml:"label,attr"`
			Required *struct{} `xml:"required"`
		} `xml:"field"`
	}
	if err := xml.Unmarshal([]byte(encode(t, spec.TokenReader())), &x); err != nil {
		t.Fatal(err)
	}
	if x.Type != "form" || len(x.Fields) != 1 || x.Fields[0].Label != "Device ID" || x.Fields[0].Required == nil {
		t.Errorf("form %+v", x)
	}
}
