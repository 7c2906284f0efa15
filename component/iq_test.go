package component

import (
	"encoding/xml"
	"reflect"
	"testing"

	"github.com/jinglepush/jinglepush/jingle"
)

// request sends an IQ from bob's phone and returns the component's answer,
// parsed.
func request(t *testing.T, c *serverConn, id, payload string) (string, jingle.IQ) {
	t.Helper()
	c.send(t, `<iq type='set' id='`+id+`' to='push.example.com' from='bob@example.com/phone'>`+payload+`</iq>`)
	raw := c.next(t, "id='"+id+"'")
	iq, err := jingle.ParseIQ([]byte(raw))
	if err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	if iq.To.String() != "bob@example.com/phone" || iq.From.String() != "push.example.com" {
		t.Errorf("answer %s is not addressed back", raw)
	}
	return raw, iq
}

// discoQuery is a disco#info or #items answer as the requester reads it.
type discoQuery struct {
	Node     string `xml:"node,attr"`
	Identity []struct {
		Category string `xml:"category,attr"`
		Type     string `xml:"type,attr"`
		Name     string `xml:"name,attr"`
	} `xml:"identity"`
	Features []struct {
		Var string `xml:"var,attr"`
	} `xml:"feature"`
	Items []struct {
		JID  string `xml:"jid,attr"`
		Node string `xml:"node,attr"`
		Name string `xml:"name,attr"`
	} `xml:"item"`
}

func readQuery(t *testing.T, raw string) discoQuery {
	t.Helper()
	var iq struct {
		Query discoQuery `xml:"query"`
	}
	if err := xml.Unmarshal([]byte(raw), &iq); err != nil {
		t.Fatal(err)
	}
	return iq.Query
}

// The disco answers of the contract (DESIGN.md section 3).
func TestDiscoAnswers(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	for _, tc := range [...]struct {
		node, category, typ, name string
		features                  []string
	}{
		0: {"", "pubsub", "push", "jinglepush", []string{
			"http://jabber.org/protocol/commands", "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
			"jabber:iq:version", "urn:xmpp:ping", "urn:xmpp:push:0",
		}},
		1: {nodeRegister, "automation", "command-node", "Register an iOS device for pushes", []string{jingle.NSCommands, jingle.NSDataForm}},
		2: {nodeUnregister, "automation", "command-node", "Unregister an iOS device", []string{jingle.NSCommands, jingle.NSDataForm}},
		3: {jingle.NodeCommands, "automation", "command-list", "Commands", nil},
	} {
		raw, iq := request(t, c, "d", `<query xmlns='http://jabber.org/protocol/disco#info' node='`+tc.node+`'/>`)
		if iq.Type != "result" || iq.Payload != jingle.PayloadDiscoInfo || iq.Node != tc.node {
			t.Errorf("%s: %s", tc.node, raw)
		}
		q := readQuery(t, raw)
		if len(q.Identity) != 1 || q.Identity[0].Category != tc.category || q.Identity[0].Type != tc.typ || q.Identity[0].Name != tc.name {
			t.Errorf("%s: identity %+v", tc.node, q.Identity)
		}
		var features []string
		for _, f := range q.Features {
			features = append(features, f.Var)
		}
		if !reflect.DeepEqual(features, tc.features) {
			t.Errorf("%s: features\n got %q\nwant %q", tc.node, features, tc.features)
		}
	}

	raw, iq := request(t, c, "i", `<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>`)
	q := readQuery(t, raw)
	if iq.Payload != jingle.PayloadDiscoItems || q.Node != jingle.NodeCommands || len(q.Items) != 2 ||
		q.Items[0].JID != "push.example.com" || q.Items[0].Node != nodeRegister || q.Items[0].Name != "Register an iOS device for pushes" ||
		q.Items[1].JID != "push.example.com" || q.Items[1].Node != nodeUnregister {
		t.Errorf("command list %s", raw)
	}
	raw, _ = request(t, c, "j", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
	if q := readQuery(t, raw); q.Node != "" || len(q.Items) != 0 {
		t.Errorf("node-less items %s", raw)
	}
	for i, payload := range []string{
		`<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/>`,
		`<query xmlns='http://jabber.org/protocol/disco#items' node='nope'/>`,
	} {
		if raw, iq := request(t, c, "n", payload); iq.Type != "error" {
			t.Errorf("%d: unknown node answered %s", i, raw)
		}
	}
}

func TestVersionAnswer(t *testing.T) {
	h := start(t, "", func(c *Config) { c.Version = "1.2.3" })
	c := h.srv.conn(t)
	raw, iq := request(t, c, "v", `<query xmlns='jabber:iq:version'/>`)
	var v struct {
		Name    string  `xml:"query>name"`
		Version string  `xml:"query>version"`
		OS      *string `xml:"query>os"`
	}
	if err := xml.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	if iq.Payload != jingle.PayloadVersion || v.Name != "jinglepush" || v.Version != "1.2.3" || v.OS != nil {
		t.Errorf("version %s", raw)
	}
}

// commandForm is a command answer's form as the app reads it.
type commandForm struct {
	Actions *struct {
		Execute  string    `xml:"execute,attr"`
		Complete *struct{} `xml:"complete"`
	} `xml:"command>actions"`
	Note *struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"command>note"`
	Form struct {
		Type   string `xml:"type,attr"`
		Title  string `xml:"title"`
		Fields []struct {
			Var      string    `xml:"var,attr"`
			Type     string    `xml:"type,attr"`
			Label    string    `xml:"label,attr"`
			Required *struct{} `xml:"required"`
			Values   []string  `xml:"value"`
			Options  []string  `xml:"option>value"`
		} `xml:"field"`
	} `xml:"command>x"`
}

func readCommand(t *testing.T, raw string) commandForm {
	t.Helper()
	var f commandForm
	if err := xml.Unmarshal([]byte(raw), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// The registration command's forms and results (DESIGN.md section 3), as
// the app reads them and as jingle.ParseIQ reads them back.
func TestCommandAnswers(t *testing.T) {
	h := start(t, "", nil)
	c := h.srv.conn(t)
	cmd := func(node, action, body string) string {
		if body == "" {
			return `<command xmlns='http://jabber.org/protocol/commands' node='` + node + `' action='` + action + `'/>`
		}
		return `<command xmlns='http://jabber.org/protocol/commands' node='` + node + `' action='` + action + `' sessionid='s1'>` + body + `</command>`
	}

	// A bare execute: the empty form, and a session to complete it in.
	raw, iq := request(t, c, "c1", cmd(nodeRegister, "execute", ""))
	f := readCommand(t, raw)
	if iq.Command == nil || iq.Command.Status != statusExecuting || iq.Command.SessionID == "" || iq.Command.Form.Type != "form" {
		t.Fatalf("bare execute: %s", raw)
	}
	if f.Actions == nil || f.Actions.Execute != "complete" || f.Actions.Complete == nil {
		t.Errorf("actions in %s", raw)
	}
	vars := map[string]string{}
	for _, field := range f.Form.Fields {
		vars[field.Var] = field.Type
		if (field.Var == "device-id") != (field.Required != nil) || field.Label == "" {
			t.Errorf("field %+v", field)
		}
		if field.Var == "environment" && !reflect.DeepEqual(field.Options, []string{"production", "sandbox"}) {
			t.Errorf("environment options %q", field.Options)
		}
	}
	if want := map[string]string{"device-id": "text-single", "voip-token": "text-single", "token": "text-single",
		"bundle-id": "text-single", "environment": "list-single"}; !reflect.DeepEqual(vars, want) || f.Form.Title == "" {
		t.Errorf("register form %s", raw)
	}
	raw, iq = request(t, c, "c2", cmd(nodeUnregister, "execute", ""))
	if f := readCommand(t, raw); iq.Command.Status != statusExecuting || len(f.Form.Fields) != 1 || f.Form.Fields[0].Var != "device-id" {
		t.Errorf("unregister form %s", raw)
	}

	// The submitted form completes it: jid, node and secret.
	submit := `<x xmlns='jabber:x:data' type='submit'><field var='device-id'><value>dev1</value></field><field var='voip-token'><value>ab</value></field></x>`
	raw, iq = request(t, c, "c3", cmd(nodeRegister, "complete", submit))
	want := jingle.Command{Node: nodeRegister, Action: "execute", SessionID: "s1", Status: statusCompleted, Form: jingle.Form{
		Type: "result", Fields: map[string][]string{"jid": {"push.example.com"}, "node": {"node1"}, "secret": {"secret1"}},
	}}
	if iq.Command == nil || !reflect.DeepEqual(*iq.Command, want) {
		t.Errorf("registered: %s", raw)
	}
	types := map[string]string{}
	for _, field := range readCommand(t, raw).Form.Fields {
		types[field.Var] = field.Type
	}
	if !reflect.DeepEqual(types, map[string]string{"jid": "jid-single", "node": "text-single", "secret": "text-private"}) {
		t.Errorf("result field types %v", types)
	}

	raw, iq = request(t, c, "c4", cmd(nodeUnregister, "execute", submit))
	if f := readCommand(t, raw); iq.Command.Status != statusCompleted || iq.Command.SessionID != "s1" || f.Note == nil ||
		f.Note.Type != "info" || f.Note.Text != "Device unregistered." {
		t.Errorf("unregistered: %s", raw)
	}
	raw, iq = request(t, c, "c5", cmd(nodeRegister, "cancel", "<x xmlns='urn:example'/>"))
	if iq.Command.Status != statusCanceled || iq.Command.SessionID != "s1" {
		t.Errorf("cancel: %s", raw)
	}
}
