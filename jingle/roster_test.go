package jingle_test

import (
	"errors"
	"reflect"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/jinglepush/jinglepush/jingle"
)

func item(j, name, subscription string, groups ...string) roster.Item {
	return roster.Item{JID: jid.MustParse(j), Name: name, Subscription: subscription, Group: groups}
}

var rosterTests = [...]struct {
	file  string
	push  bool
	ver   string
	items []roster.Item
	err   error
}{
	0: {file: "ejabberd-iq-roster-result.xml", items: []roster.Item{item("alice@localhost", "Alice", "both", "Friends")}},
	1: {file: "prosody-iq-roster-result.xml"},
	2: {file: "iq-roster-result-many.xml", ver: "ver7", items: []roster.Item{
		item("alice@localhost", "", "both"), item("carol@localhost", "", "to"),
		item("eve@remote.localhost", "Eve", "none"), item("frank@localhost", "", "from"),
	}},
	3: {file: "iq-roster-push.xml", push: true, ver: "ver14", items: []roster.Item{item("carol@localhost", "Carol", "both", "Work", "Friends")}},
	4: {file: "iq-roster-push-remove.xml", push: true, items: []roster.Item{item("dave@remote.localhost", "", "remove")}},
	5: {file: "malformed-roster-bad-jid.xml", err: jingle.ErrMalformed},
	6: {file: "malformed-roster-bad-subscription.xml", err: jingle.ErrMalformed},
	7: {file: "iq-ping.xml", err: jingle.ErrMalformed},                    // no roster
	8: {file: "iq-disco-info.xml", err: jingle.ErrMalformed},              // a get
	9: {file: "prosody-presence-available.xml", err: jingle.ErrMalformed}, // no iq
}

func TestParseRoster(t *testing.T) {
	for i, tc := range rosterTests {
		raw := testdata(t, tc.file)
		r, err := jingle.ParseRoster(raw)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Fatalf("%d: ParseRoster(%s) error = %v, want %v", i, tc.file, err, tc.err)
		}
		if err != nil {
			continue
		}
		if r.Account.String() != "bob@localhost" || r.Push != tc.push || r.Ver != tc.ver || !reflect.DeepEqual(r.Items, tc.items) {
			t.Errorf("%d: ParseRoster(%s) = %+v\nwant push %v ver %q items %+v", i, tc.file, r, tc.push, tc.ver, tc.items)
		}
		want := stanza.ResultIQ
		if tc.push {
			want = stanza.SetIQ
		}
		if r.IQ.Type != want || r.IQ.ID == "" {
			t.Errorf("%d: iq %+v", i, r.IQ)
		}
	}
}

// A push holds one item and comes from the account itself; "remove" is for
// pushes only.
func TestParseRosterRules(t *testing.T) {
	for i, raw := range []string{
		`<iq type='set' id='p' from='bob@localhost' to='push.localhost'><query xmlns='jabber:iq:roster'/></iq>`,
		`<iq type='set' id='p' from='bob@localhost' to='push.localhost'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/><item jid='b@localhost'/></query></iq>`,
		`<iq type='set' id='p' from='bob@localhost/phone' to='push.localhost'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/></query></iq>`,
		`<iq type='result' id='p' from='localhost' to='push.localhost'><query xmlns='jabber:iq:roster'/></iq>`,
		`<iq type='result' id='p' from='bob@localhost' to='push.localhost'><query xmlns='jabber:iq:roster'><item jid='a@localhost' subscription='remove'/></query></iq>`,
		`<iq type='result' id='p' from='bob@localhost' to='push.localhost'><query xmlns='jabber:iq:roster'><item name='no jid'/></query></iq>`,
		`<iq type='error' id='p' from='bob@localhost' to='push.localhost'><query xmlns='jabber:iq:roster'/></iq>`,
		`<iq type='result' id='p' from='bob@localhost' to='push.localhost'/>`,
	} {
		if _, err := jingle.ParseRoster([]byte(raw)); !errors.Is(err, jingle.ErrMalformed) {
			t.Errorf("%d: ParseRoster(%s) error = %v, want ErrMalformed", i, raw, err)
		}
	}
}
