package jingle_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"reflect"
	"testing"

	"mellium.im/xmlstream"
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

// iqView is an IQ with comparable fields.
type iqView struct {
	Type               stanza.IQType
	ID, From, To, Lang string
	Payload            jingle.IQPayload
	PayloadName        string // "{space}local"
	Node               string
	Command            *jingle.Command
	Publish            *jingle.Publish
}

func viewIQ(iq jingle.IQ) iqView {
	v := iqView{
		Type: iq.Type, ID: iq.ID, From: iq.From.String(), To: iq.To.String(), Lang: iq.Lang,
		Payload: iq.Payload, Node: iq.Node, Command: iq.Command, Publish: iq.Publish,
	}
	if iq.PayloadName.Local != "" {
		v.PayloadName = "{" + iq.PayloadName.Space + "}" + iq.PayloadName.Local
	}
	return v
}

// publish is a XEP-0357 publish from localhost to push.localhost for bob's
// node, as in the spike captures.
func publish(id string, p jingle.Publish) iqView {
	p.Node = "bobnode"
	return iqView{
		Type: stanza.SetIQ, ID: id, From: "localhost", To: "push.localhost",
		Payload: jingle.PayloadPublish, PayloadName: "{" + jingle.NSPubSub + "}pubsub", Publish: &p,
	}
}

// request is an IQ from bob's phone to the component.
func request(typ stanza.IQType, id string, payload jingle.IQPayload, name string, mod func(*iqView)) iqView {
	v := iqView{Type: typ, ID: id, From: "bob@localhost/phone", To: "push.localhost", Lang: "en", Payload: payload, PayloadName: name}
	if mod != nil {
		mod(&v)
	}
	return v
}

var (
	pubOpts = jingle.Form{Type: "submit", FormType: jingle.FormTypePublishOptions, Fields: map[string][]string{
		"device_token": {"abcdef0123"}, "push_type": {"voip"},
	}}
	regForm = jingle.Form{Type: "submit", FormType: "urn:jinglepush:register:0", Fields: map[string][]string{
		"device-id":   {"8D5A4C2E-1F0B-4C1A-9E3B-7A6F5D4C3B2A"},
		"voip-token":  {"abababababababababababababababababababababababababababababababab"},
		"token":       {"CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD"},
		"bundle-id":   {"com.example.chat"},
		"environment": {"sandbox"},
		"empty":       {},
	}}
)

const (
	nameCommand = "{" + jingle.NSCommands + "}command"
	nodeReg     = "register-push-apns"
)

var iqTests = [...]struct {
	file string
	want iqView
	err  error
}{
	0: {file: "prosody-publish-summary.xml", want: publish("c95be165e2a83d11704fc7bb722b93eb6d1ba988136cea305fcb7bccb0287914",
		jingle.Publish{Summary: jingle.Summary{MessageCount: 1, Body: "New Message!"}})},
	1: {file: "prosody-publish-chatstate.xml", want: publish("b0f219ddbe012bf44e55d42e76dc6be1c3a1edea1d69365a827b4d8c34b58a37",
		jingle.Publish{Summary: jingle.Summary{MessageCount: 1}})},
	2: {file: "prosody-publish-pubopts.xml", want: publish("dac75b9614f40e138c66fc106fc82810010aecbdc086acfe9536051642a2c400",
		jingle.Publish{Options: pubOpts, Summary: jingle.Summary{MessageCount: 1, Body: "New Message!"}})},
	3: {file: "prosody-publish-sender.xml", want: publish("91dcd030fdd66562206f194c296de88905b428a42ff076a36c2c3fc5d593682c",
		jingle.Publish{Summary: jingle.Summary{MessageCount: 1, Sender: "alice@localhost/spike", Body: "New Message!"}})},
	4: {file: "prosody-publish-nodummy.xml", want: publish("ee6c6e37472e686cad433e0ad66343d86b680e1be3e0c20127ce634bdf202dd8",
		jingle.Publish{Summary: jingle.Summary{MessageCount: 1}})},
	5: {file: "prosody-publish-withbody.xml", want: publish("4c5157aec4bfe027143e727b8cc05c789f314315b14ddd9e61d7e88d83632add",
		jingle.Publish{Summary: jingle.Summary{MessageCount: 1, Body: "hello bob"}})},
	6: {file: "prosody13-publish-encrypted-voip.xml", want: publish("c95be165e2a83d11704fc7bb722b93eb6d1ba988136cea305fcb7bccb0287914",
		jingle.Publish{Encrypted: true, VoIP: true})},
	7: {file: "prosody13-publish-encrypted-chat.xml", want: publish("c95be165e2a83d11704fc7bb722b93eb6d1ba988136cea305fcb7bccb0287914",
		jingle.Publish{Encrypted: true})},
	8: {file: "ejabberd-publish-empty.xml", want: publish("rr-1795321995216-9954861814580176212-rzb9zcTPXsUQJIlRJbt9IHmD51M=-24895364",
		jingle.Publish{})},
	9: {file: "ejabberd-publish-pubopts.xml", want: publish("rr-1795322257950-12707032305341560164-j2FdfQXiOdmJ0IrgI4ljDQ/+m/4=-24895364",
		jingle.Publish{Options: pubOpts})},
	10: {file: "ejabberd-publish-body.xml", want: publish("rr-1795322008261-15659849115462719720-c/JDUAk77YEKnvnzzHQ1Df5OXWI=-24895364",
		jingle.Publish{Summary: jingle.Summary{Body: "New message"}})},
	11: {file: "ejabberd-publish-sender-body.xml", want: publish("rr-1795322186764-5208546094744688294-z+zn5rftl5WgDl6o914TTNQPUQs=-24895364",
		jingle.Publish{Summary: jingle.Summary{Sender: "alice@localhost/spike", Body: "hello bob"}})},
	12: {file: "iq-command-execute.xml", want: request(stanza.SetIQ, "cmd-1", jingle.PayloadCommand, nameCommand, func(v *iqView) {
		v.Node, v.Command = nodeReg, &jingle.Command{Node: nodeReg, Action: "execute"}
	})},
	13: {file: "iq-command-execute-form.xml", want: request(stanza.SetIQ, "cmd-2", jingle.PayloadCommand, nameCommand, func(v *iqView) {
		v.Node, v.Command = nodeReg, &jingle.Command{Node: nodeReg, Action: "execute", Form: regForm}
	})},
	14: {file: "iq-command-complete-form.xml", want: request(stanza.SetIQ, "cmd-3", jingle.PayloadCommand, nameCommand, func(v *iqView) {
		v.Node, v.Command = nodeReg, &jingle.Command{Node: nodeReg, Action: "complete", SessionID: "sess-1", Form: regForm}
	})},
	15: {file: "iq-command-cancel.xml", want: request(stanza.SetIQ, "cmd-4", jingle.PayloadCommand, nameCommand, func(v *iqView) {
		v.Node, v.Command = nodeReg, &jingle.Command{Node: nodeReg, Action: "cancel", SessionID: "sess-1"}
	})},
	16: {file: "iq-command-unregister.xml", want: request(stanza.SetIQ, "cmd-5", jingle.PayloadCommand, nameCommand, func(v *iqView) {
		v.Node, v.Command = "unregister-push-apns", &jingle.Command{Node: "unregister-push-apns", Action: "execute", Form: jingle.Form{
			Type: "submit", Fields: map[string][]string{"device-id": {"8D5A4C2E-1F0B-4C1A-9E3B-7A6F5D4C3B2A"}},
		}}
	})},
	17: {file: "iq-disco-info.xml", want: request(stanza.GetIQ, "d1", jingle.PayloadDiscoInfo, "{"+jingle.NSDiscoInfo+"}query", nil)},
	18: {file: "iq-disco-info-node.xml", want: request(stanza.GetIQ, "d2", jingle.PayloadDiscoInfo, "{"+jingle.NSDiscoInfo+"}query", func(v *iqView) {
		v.Node = jingle.NodeCommands
	})},
	19: {file: "iq-disco-items-commands.xml", want: request(stanza.GetIQ, "d3", jingle.PayloadDiscoItems, "{"+jingle.NSDiscoItems+"}query", func(v *iqView) {
		v.Node = jingle.NodeCommands
	})},
	20: {file: "iq-ping.xml", want: iqView{Type: stanza.GetIQ, ID: "ping1", From: "localhost", To: "push.localhost", Payload: jingle.PayloadPing, PayloadName: "{urn:xmpp:ping}ping"}},
	21: {file: "iq-ping-result.xml", want: iqView{Type: stanza.ResultIQ, ID: "ping1", From: "localhost", To: "push.localhost"}},
	22: {file: "iq-last.xml", want: request(stanza.GetIQ, "l1", jingle.PayloadOther, "{jabber:iq:last}query", nil)},
	23: {file: "iq-pubsub-subscribe.xml", want: request(stanza.SetIQ, "ps1", jingle.PayloadOther, "{"+jingle.NSPubSub+"}pubsub", nil)},
	24: {file: "ejabberd-iq-version-get.xml", want: iqView{Type: stanza.GetIQ, ID: "v1", From: "alice@localhost/spike", To: "push.localhost", Lang: "en",
		Payload: jingle.PayloadVersion, PayloadName: "{jabber:iq:version}query"}},
	25: {file: "ejabberd-iq-disco-info-result.xml", want: iqView{Type: stanza.ResultIQ, ID: "129f1f373a8cd04b", From: "localhost", To: "push.localhost",
		Payload: jingle.PayloadDiscoInfo, PayloadName: "{" + jingle.NSDiscoInfo + "}query"}},
	26: {file: "ejabberd-iq-roster-result.xml", want: iqView{Type: stanza.ResultIQ, ID: "r2", From: "bob@localhost", To: "push.localhost",
		Payload: jingle.PayloadOther, PayloadName: "{jabber:iq:roster}query"}},
	27: {file: "prosody-iq-roster-result.xml", want: iqView{Type: stanza.ResultIQ, ID: "r1", From: "bob@localhost", To: "push.localhost",
		Payload: jingle.PayloadOther, PayloadName: "{jabber:iq:roster}query"}},
	// Broken IQs keep their header so that the caller can answer bad-request.
	28: {file: "malformed-iq-no-id.xml", err: jingle.ErrMalformed, want: iqView{Type: stanza.GetIQ, From: "bob@localhost/phone", To: "push.localhost", PayloadName: "{urn:xmpp:ping}ping"}},
	29: {file: "malformed-iq-bad-from.xml", err: jingle.ErrMalformed, want: iqView{Type: stanza.GetIQ, ID: "bad-from", To: "push.localhost", PayloadName: "{urn:xmpp:ping}ping"}},
	30: {file: "malformed-iq-bad-type.xml", err: jingle.ErrMalformed, want: iqView{Type: "fetch", ID: "bad-type", From: "bob@localhost/phone", To: "push.localhost", PayloadName: "{urn:xmpp:ping}ping"}},
	31: {file: "malformed-iq-two-payloads.xml", err: jingle.ErrMalformed, want: iqView{Type: stanza.GetIQ, ID: "two", From: "bob@localhost/phone", To: "push.localhost", PayloadName: "{urn:xmpp:ping}ping"}},
	32: {file: "malformed-iq-no-payload.xml", err: jingle.ErrMalformed, want: iqView{Type: stanza.SetIQ, ID: "none", From: "bob@localhost/phone", To: "push.localhost"}},
	33: {file: "malformed-iq-truncated.xml", err: jingle.ErrMalformed, want: request(stanza.SetIQ, "c1", jingle.PayloadNone, nameCommand, nil)},
	34: {file: "malformed-command-bad-action.xml", err: jingle.ErrMalformed, want: request(stanza.SetIQ, "bad-action", jingle.PayloadNone, nameCommand, nil)},
	35: {file: "malformed-command-no-node.xml", err: jingle.ErrMalformed, want: request(stanza.SetIQ, "no-node", jingle.PayloadNone, nameCommand, nil)},
	36: {file: "malformed-publish-no-node.xml", err: jingle.ErrMalformed, want: iqView{Type: stanza.SetIQ, ID: "rr-1795321995216-9954861814580176212-rzb9zcTPXsUQJIlRJbt9IHmD51M=-24895364",
		From: "localhost", To: "push.localhost", PayloadName: "{" + jingle.NSPubSub + "}pubsub"}},
	37: {file: "prosody-presence-available.xml", err: jingle.ErrMalformed},
	38: {file: "prosody-fw-offline-propose.xml", err: jingle.ErrMalformed},
	39: {file: "malformed-declaration-before.xml", err: jingle.ErrMalformed},
	40: {file: "prosody-publish-secret.xml", want: publish("dac75b9614f40e138c66fc106fc82810010aecbdc086acfe9536051642a2c400",
		jingle.Publish{
			Options: jingle.Form{Type: "submit", FormType: jingle.FormTypePublishOptions, Fields: map[string][]string{"secret": {"q8Zt1Xr0bN4kV2cW9yL6pA"}}},
			Summary: jingle.Summary{MessageCount: 1, Body: "New Message!"},
		})},
}

func TestParseIQ(t *testing.T) {
	for i, tc := range iqTests {
		t.Run(tc.file, func(t *testing.T) {
			raw := testdata(t, tc.file)
			iq, err := jingle.ParseIQ(raw)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("%d: ParseIQ(%s) error = %v, want %v", i, tc.file, err, tc.err)
			}
			if got := viewIQ(iq); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%d: ParseIQ(%s)\n got %+v\nwant %+v", i, tc.file, got, tc.want)
				if got.Command != nil && tc.want.Command != nil {
					t.Errorf("command\n got %+v\nwant %+v", *got.Command, *tc.want.Command)
				}
				if got.Publish != nil && tc.want.Publish != nil {
					t.Errorf("publish\n got %+v\nwant %+v", *got.Publish, *tc.want.Publish)
				}
			}
			if err == nil {
				if k := jingle.Classify(raw); k != jingle.KindIQ {
					t.Errorf("%d: Classify = %v for a parsed IQ", i, k)
				}
			}
		})
	}
}

func TestPublishSecret(t *testing.T) {
	for file, want := range map[string]string{
		"prosody-publish-secret.xml":  "q8Zt1Xr0bN4kV2cW9yL6pA",
		"prosody-publish-pubopts.xml": "",
		"ejabberd-publish-empty.xml":  "",
	} {
		iq, err := jingle.ParseIQ(testdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := iq.Publish.Secret(); got != want {
			t.Errorf("%s: Secret() = %q, want %q", file, got, want)
		}
	}
}

func TestFormGetHas(t *testing.T) {
	iq, err := jingle.ParseIQ(testdata(t, "iq-command-execute-form.xml"))
	if err != nil {
		t.Fatal(err)
	}
	f := iq.Command.Form
	for _, tc := range [...]struct {
		v   string
		get string
		has bool
	}{
		0: {"device-id", "8D5A4C2E-1F0B-4C1A-9E3B-7A6F5D4C3B2A", true},
		1: {"empty", "", true},
		2: {"missing", "", false},
		3: {"FORM_TYPE", "", false},
	} {
		if got := f.Get(tc.v); got != tc.get {
			t.Errorf("Get(%q) = %q, want %q", tc.v, got, tc.get)
		}
		if got := f.Has(tc.v); got != tc.has {
			t.Errorf("Has(%q) = %v, want %v", tc.v, got, tc.has)
		}
	}
	var zero jingle.Form
	if zero.Get("x") != "" || zero.Has("x") {
		t.Error("zero Form has fields")
	}
}

// A reply built from the parsed header goes back where the request came
// from, with the same id.
func TestParseIQReplyAddressing(t *testing.T) {
	iq, err := jingle.ParseIQ(testdata(t, "iq-ping.xml"))
	if err != nil {
		t.Fatal(err)
	}
	got := encode(t, iq.Result(nil))
	const want = `<iq type="result" to="localhost" from="push.localhost" id="ping1"></iq>`
	if got != want {
		t.Errorf("ping result\n got %s\nwant %s", got, want)
	}
}

func TestIQPayloadString(t *testing.T) {
	for p, want := range map[jingle.IQPayload]string{
		jingle.PayloadNone: "none", jingle.PayloadOther: "other", jingle.PayloadPing: "ping",
		jingle.PayloadDiscoInfo: "disco#info", jingle.PayloadDiscoItems: "disco#items", jingle.PayloadVersion: "version",
		jingle.PayloadCommand: "command", jingle.PayloadPublish: "publish", 99: "IQPayload(99)",
	} {
		if got := p.String(); got != want {
			t.Errorf("IQPayload(%d).String() = %q, want %q", int(p), got, want)
		}
	}
}
