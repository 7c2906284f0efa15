package jingle_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/jingle"
)

// callView is a CallEvent with comparable fields.
type callView struct {
	Action                            jingle.Action
	ID, From, To                      string
	Media                             []string
	Reason                            string
	Delay                             string // RFC 3339, UTC; "" when zero
	WrapperFrom, WrapperTo, WrapperID string
	Jingle                            bool
	StanzaID                          string
	Undeliverable                     bool
	MessageType, MigratedTo           string
	TieBreak                          bool
	Carbon                            jingle.Carbon
	CarbonOf                          string
}

func viewCall(e jingle.CallEvent) callView {
	v := callView{
		Action: e.Action, ID: e.ID, From: e.From.String(), To: e.To.String(),
		Media: e.Media, Reason: e.Reason,
		WrapperFrom: e.Wrapper.From.String(), WrapperTo: e.Wrapper.To.String(), WrapperID: e.Wrapper.ID,
		Jingle: e.Jingle, StanzaID: e.StanzaID, Undeliverable: e.Undeliverable(),
		MessageType: e.MessageType, MigratedTo: e.MigratedTo, TieBreak: e.TieBreak,
		Carbon: e.Carbon, CarbonOf: e.CarbonOf.String(),
	}
	if !e.Delay.IsZero() {
		if e.Delay.Location() != time.UTC {
			v.Delay = "not UTC: " + e.Delay.String()
		} else {
			v.Delay = e.Delay.Format(time.RFC3339Nano)
		}
	}
	return v
}

// propose is the call that alice@localhost/spike proposes to bob@localhost
// in the spike captures.
func propose(mod func(*callView)) callView {
	v := callView{
		Action: jingle.ActionPropose, ID: "call1", From: "alice@localhost/spike", To: "bob@localhost",
		Media: []string{"audio"}, WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-store",
		MessageType: "chat",
	}
	if mod != nil {
		mod(&v)
	}
	return v
}

var callTests = [...]struct {
	file string
	want callView
	err  error
}{
	0: {file: "prosody-fw-deliver-propose.xml", want: propose(nil)},
	1: {file: "prosody-fw-offline-propose.xml", want: propose(nil)},
	2: {file: "prosody-fw-hibernated-propose.xml", want: propose(func(v *callView) { v.Delay = "2026-11-22T04:26:21Z" })},
	3: {file: "prosody-hibtimeout-propose-again.xml", want: propose(func(v *callView) { v.Delay = "2026-11-22T04:29:07Z" })},
	4: {file: "prosody13-fw-hibernated-propose.xml", want: propose(func(v *callView) { v.Delay = "2026-11-22T05:32:14Z" })},
	5: {file: "prosody-undeliverable-propose.xml", want: propose(func(v *callView) {
		v.WrapperTo, v.Undeliverable = "undeliverable@push.localhost", true
	})},
	6: {file: "prosody-fw-session-initiate.xml", want: callView{
		Action: jingle.ActionPropose, ID: "s1", From: "alice@localhost/spike", To: "bob@localhost/phone", Media: []string{"audio"},
		WrapperFrom: "localhost", WrapperTo: "push.localhost", Jingle: true, StanzaID: "si-full",
	}},
	7: {file: "ejabberd-servicelog-propose.xml", want: propose(func(v *callView) { v.WrapperID = "4650362731720874925" })},
	8: {file: "ejabberd-servicelog-propose-offline-replay.xml", want: propose(func(v *callView) {
		v.WrapperID, v.Delay = "7197869559099193452", "2026-11-22T04:35:50.864599Z"
	})},
	9: {file: "ejabberd-servicelog-propose-mam-replay.xml", want: propose(func(v *callView) {
		v.WrapperID, v.Delay = "15603246075707561430", "2026-11-22T04:36:40.200401Z"
	})},
	10: {file: "ejabberd-servicelog-session-initiate.xml", want: callView{
		Action: jingle.ActionPropose, ID: "s1", From: "alice@localhost/spike", To: "bob@localhost/phone", Media: []string{"audio"},
		WrapperFrom: "localhost", WrapperTo: "push.localhost", WrapperID: "12860650016644089918", Jingle: true, StanzaID: "si-full",
	}},
	11: {file: "ejabberd-servicelog-session-initiate-bare.xml", want: callView{
		Action: jingle.ActionPropose, ID: "s2", From: "alice@localhost/spike", To: "bob@localhost", Media: []string{"audio"},
		WrapperFrom: "localhost", WrapperTo: "push.localhost", WrapperID: "1816583088492317455", Jingle: true, StanzaID: "si-bare",
	}},
	12: {file: "ejabberd-servicelog-session-initiate-error.xml", err: jingle.ErrNotCall},
	13: {file: "jmi-retract.xml", want: propose(func(v *callView) {
		v.Action, v.Media, v.Reason, v.StanzaID = jingle.ActionRetract, nil, "cancel", "jmi-retract"
	})},
	14: {file: "jmi-accept.xml", want: callView{
		Action: jingle.ActionAccept, ID: "call1", From: "bob@localhost/desktop", To: "bob@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-accept", MessageType: "chat",
	}},
	15: {file: "jmi-proceed.xml", want: callView{
		Action: jingle.ActionProceed, ID: "call1", From: "bob@localhost/desktop", To: "alice@localhost/spike",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-proceed", MessageType: "chat",
	}},
	16: {file: "jmi-reject-busy.xml", want: callView{
		Action: jingle.ActionReject, ID: "call1", From: "bob@localhost/phone", To: "alice@localhost/spike", Reason: "busy",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-reject", MessageType: "chat",
	}},
	17: {file: "jmi-finish.xml", want: propose(func(v *callView) {
		v.Action, v.Media, v.Reason, v.To, v.StanzaID = jingle.ActionFinish, nil, "success", "bob@localhost/phone", "jmi-finish"
	})},
	18: {file: "jmi-ringing.xml", want: callView{
		Action: jingle.ActionRinging, ID: "call1", From: "bob@localhost/phone", To: "alice@localhost/spike",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-ringing", MessageType: "chat",
	}},
	19: {file: "jmi-propose-video.xml", want: propose(func(v *callView) {
		v.ID, v.Media, v.StanzaID = "7f3c1f4e-5c5e-4a53-9b7e-2a4c1d3e9f10", []string{"audio", "video"}, "jmi-video"
	})},
	20: {file: "jmi-propose-pretty.xml", want: propose(func(v *callView) {
		// The <forwarded/> delay (+02:00) is older than the inner one.
		v.ID, v.StanzaID, v.Delay = "call-pretty", "jmi-pretty", "2026-11-22T02:29:05Z"
	})},
	21: {file: "jmi-propose-prefixed.xml", want: propose(func(v *callView) {
		v.ID, v.Media, v.StanzaID, v.WrapperID = "call-prefixed", []string{"video"}, "jmi-prefixed", "w1"
	})},
	22: {file: "jmi-propose-legacy-delay.xml", want: propose(func(v *callView) {
		v.ID, v.StanzaID, v.Delay = "call-legacy", "jmi-legacy", "2026-11-22T04:29:07Z"
	})},
	23: {file: "jingle-session-accept.xml", want: callView{
		Action: jingle.ActionProceed, ID: "s1", From: "bob@localhost/phone", To: "alice@localhost/spike",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", Jingle: true, StanzaID: "sa-1",
	}},
	24: {file: "jingle-session-terminate-decline.xml", want: callView{
		Action: jingle.ActionFinish, ID: "s1", From: "bob@localhost/phone", To: "alice@localhost/spike", Reason: "decline",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", Jingle: true, StanzaID: "st-1",
	}},
	25: {file: "jingle-session-info-ringing.xml", want: callView{
		Action: jingle.ActionRinging, ID: "s1", From: "bob@localhost/phone", To: "alice@localhost/spike",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", Jingle: true, StanzaID: "si-ring",
	}},
	26: {file: "jingle-session-info-mute.xml", err: jingle.ErrNotCall},
	27: {file: "jingle-transport-info.xml", err: jingle.ErrNotCall},
	28: {file: "jmi-carbon-propose.xml", err: jingle.ErrNotCall}, // the copy lacks xmlns='jabber:client': no stanza
	29: {file: "jmi-mam-result-propose.xml", err: jingle.ErrNotCall},
	30: {file: "jmi-nested-propose.xml", err: jingle.ErrNotCall},
	31: {file: "jmi-error-bounce.xml", err: jingle.ErrNotCall},
	32: {file: "jmi-unknown-element.xml", err: jingle.ErrNotCall},
	33: {file: "jmi-forwarded-presence.xml", err: jingle.ErrNotCall},
	34: {file: "jmi-body-mentions-ns.xml", err: jingle.ErrNotCall},
	35: {file: "ejabberd-servicelog-chat.xml", err: jingle.ErrNotCall},
	36: {file: "ejabberd-servicelog-presence.xml", err: jingle.ErrNotCall},
	37: {file: "ejabberd-servicelog-push-enable.xml", err: jingle.ErrNotCall},
	38: {file: "prosody-privilege.xml", err: jingle.ErrNotCall},
	39: {file: "prosody-presence-available.xml", err: jingle.ErrNotCall},
	40: {file: "prosody-publish-summary.xml", err: jingle.ErrNotCall},
	41: {file: "malformed-foreign-names.xml", err: jingle.ErrNotCall},
	42: {file: "malformed-foreign-root.xml", err: jingle.ErrNotCall},
	43: {file: "malformed-propose-no-id.xml", err: jingle.ErrMalformed},
	44: {file: "malformed-propose-id-too-long.xml", err: jingle.ErrMalformed},
	45: {file: "malformed-propose-bad-from.xml", err: jingle.ErrMalformed},
	46: {file: "malformed-propose-no-from.xml", err: jingle.ErrMalformed},
	47: {file: "malformed-propose-bad-to.xml", err: jingle.ErrMalformed},
	48: {file: "malformed-propose-wrapper-no-from.xml", err: jingle.ErrMalformed},
	49: {file: "malformed-propose-truncated.xml", err: jingle.ErrMalformed},
	50: {file: "malformed-propose-huge-attr.xml", err: jingle.ErrMalformed},
	51: {file: "malformed-propose-descriptions.xml", err: jingle.ErrMalformed},
	52: {file: "malformed-propose-bad-media.xml", err: jingle.ErrMalformed},
	53: {file: "malformed-propose-bad-delay.xml", err: jingle.ErrMalformed},
	54: {file: "malformed-propose-bad-entity.xml", err: jingle.ErrMalformed},
	55: {file: "malformed-propose-trailing.xml", err: jingle.ErrMalformed},
	56: {file: "malformed-jingle-no-sid.xml", err: jingle.ErrMalformed},
	57: {file: "malformed-jingle-no-action.xml", err: jingle.ErrMalformed},
	58: {file: "jmi-groupchat-propose.xml", want: callView{
		Action: jingle.ActionPropose, ID: "call-muc", From: "room@conference.localhost/alice", To: "bob@localhost/phone", Media: []string{"audio"},
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-muc", MessageType: "groupchat",
	}},
	59: {file: "jmi-headline-propose.xml", want: callView{
		Action: jingle.ActionPropose, ID: "call-headline", From: "news.localhost", To: "bob@localhost", Media: []string{"audio"},
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-headline", MessageType: "headline",
	}},
	60: {file: "jmi-finish-migrated.xml", want: propose(func(v *callView) {
		v.Action, v.Media, v.Reason, v.To, v.StanzaID = jingle.ActionFinish, nil, "expired", "bob@localhost/phone", "jmi-migrated"
		v.MigratedTo = "989a46a6-f202-4910-a7c3-83c6ba3f3947"
	})},
	61: {file: "jmi-reject-tie-break.xml", want: callView{
		Action: jingle.ActionReject, ID: "fecbea35-08d3-404f-9ec7-2b57c566fa74", From: "bob@localhost/phone", To: "alice@localhost/spike",
		Reason: "expired", TieBreak: true, WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-tie-reject", MessageType: "chat",
	}},
	62: {file: "jmi-retract-tie-break.xml", want: propose(func(v *callView) {
		v.Action, v.ID, v.Media, v.Reason, v.StanzaID, v.TieBreak = jingle.ActionRetract, "fecbea35-08d3-404f-9ec7-2b57c566fa74", nil, "expired", "jmi-tie-retract", true
	})},
	63: {file: "jmi-retract-no-reason.xml", want: propose(func(v *callView) {
		v.Action, v.Media, v.StanzaID = jingle.ActionRetract, nil, "jmi-retract-bare"
	})},
	// XEP-0280 carbons: the copied message's signal, marked.
	64: {file: "jmi-carbon-sent-proceed.xml", want: callView{
		Action: jingle.ActionProceed, ID: "call1", From: "bob@localhost/phone", To: "alice@remote.localhost/pc",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-proceed", MessageType: "chat",
		Carbon: jingle.CarbonSent, CarbonOf: "bob@localhost",
	}},
	// A propose to bob's phone, copied to his desk: still alice's call to bob.
	65: {file: "jmi-carbon-received-propose.xml", want: callView{
		Action: jingle.ActionPropose, ID: "call2", From: "alice@remote.localhost/pc", To: "bob@localhost/phone", Media: []string{"audio"},
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-full", MessageType: "chat",
		Carbon: jingle.CarbonReceived, CarbonOf: "bob@localhost",
	}},
	// bob calling alice from his phone, copied to his desk: a call to alice.
	66: {file: "jmi-carbon-sent-propose.xml", want: callView{
		Action: jingle.ActionPropose, ID: "call3", From: "bob@localhost/phone", To: "alice@remote.localhost", Media: []string{"video"},
		Delay: "2026-11-22T04:29:07Z", WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-out", MessageType: "chat",
		Carbon: jingle.CarbonSent, CarbonOf: "bob@localhost",
	}},
	67: {file: "jmi-carbon-spoofed.xml", err: jingle.ErrNotCall},
	68: {file: "jmi-carbon-spoofed-resource.xml", err: jingle.ErrNotCall},
	69: {file: "jmi-carbon-not-the-accounts.xml", err: jingle.ErrNotCall},
	70: {file: "jmi-carbon-to-another-account.xml", err: jingle.ErrNotCall},
	// XEP-0482 call invites: counted, never rung.
	71: {file: "invite-jingle.xml", want: callView{
		Action: jingle.ActionInvite, ID: "inv1", From: "alice@localhost/spike", To: "bob@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "inv1", MessageType: "chat",
	}},
	72: {file: "invite-dino-muji.xml", want: callView{
		Action: jingle.ActionInvite, ID: "5b3f0a4e-dino", From: "alice@localhost/dino", To: "bob@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "2e1d2b7c-msg", MessageType: "chat",
	}},
	73: {file: "invite-groupchat.xml", want: callView{
		Action: jingle.ActionInvite, ID: "origin-gc1", From: "abc@conference.localhost/alice", To: "bob@localhost/phone",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "gc1", MessageType: "groupchat",
	}},
	74: {file: "invite-retract.xml", want: callView{
		Action: jingle.ActionInviteRetract, ID: "inv1", From: "alice@localhost/spike", To: "bob@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", MessageType: "chat",
	}},
	75: {file: "invite-accept.xml", want: callView{
		Action: jingle.ActionInviteAccept, ID: "inv1", From: "bob@localhost/phone", To: "alice@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", MessageType: "chat",
	}},
	76: {file: "invite-reject.xml", want: callView{
		Action: jingle.ActionInviteReject, ID: "inv1", From: "bob@localhost/phone", To: "alice@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", MessageType: "chat",
	}},
	77: {file: "invite-left.xml", want: callView{
		Action: jingle.ActionInviteLeft, ID: "inv1", From: "bob@localhost/phone", To: "alice@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", MessageType: "chat",
	}},
	78: {file: "malformed-invite-accept-no-id.xml", err: jingle.ErrMalformed},
	79: {file: "malformed-finish-migrated-no-to.xml", err: jingle.ErrMalformed},
	// Sent to the sender's own bare JID: Prosody removes the to.
	80: {file: "prosody-fw-accept-to-self.xml", want: callView{
		Action: jingle.ActionAccept, ID: "call1", From: "bob@localhost/laptop", To: "bob@localhost",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "m-accept-call1", MessageType: "chat",
	}},
}

func TestParseCall(t *testing.T) {
	for i, tc := range callTests {
		t.Run(tc.file, func(t *testing.T) {
			raw := testdata(t, tc.file)
			ev, err := jingle.ParseCall(raw)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("%d: ParseCall(%s) error = %v, want %v", i, tc.file, err, tc.err)
			}
			if err != nil {
				if got := err.Error(); len(got) < len("jingle: ") || got[:len("jingle: ")] != "jingle: " {
					t.Errorf("%d: error %q lacks the package prefix", i, got)
				}
				return
			}
			if got := viewCall(ev); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%d: ParseCall(%s)\n got %+v\nwant %+v", i, tc.file, got, tc.want)
			}
			if k := jingle.Classify(raw); k != jingle.KindCall {
				t.Errorf("%d: Classify = %v for a parsed call", i, k)
			}
		})
	}
}

func TestParseCallUndeliverable(t *testing.T) {
	for file, want := range map[string]bool{
		"prosody-undeliverable-propose.xml": true,
		"prosody-fw-offline-propose.xml":    false,
	} {
		ev, err := jingle.ParseCall(testdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Undeliverable() != want {
			t.Errorf("%s: Undeliverable() = %v, want %v", file, ev.Undeliverable(), want)
		}
	}
}

// carbon wraps the copied message in a carbon of kind ("sent",
// "received") from wrapperFrom to bob's desk, forwarded by the server.
func carbon(kind, wrapperFrom, copied string) string {
	return `<message to='push.localhost' from='localhost'><forwarded xmlns='urn:xmpp:forward:0'>` +
		`<message xmlns='jabber:client' from='` + wrapperFrom + `' to='bob@localhost/desk' type='chat'><` + kind + ` xmlns='urn:xmpp:carbons:2'>` +
		`<forwarded xmlns='urn:xmpp:forward:0'>` + copied + `</forwarded></` + kind + `></message></forwarded></message>`
}

const copiedPropose = `<message xmlns='jabber:client' from='alice@localhost/spike' to='bob@localhost/phone' type='chat' id='m'>` +
	`<propose xmlns='urn:xmpp:jingle-message:0' id='c'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>`

// Only a server's own carbon of one of the account's messages counts, and
// the error says why a carbon does not.
func TestParseCallCarbonRules(t *testing.T) {
	for i, tc := range [...]struct {
		raw  string
		err  error
		says string
	}{
		0: {carbon("received", "bob@localhost", copiedPropose), nil, ""},
		1: {carbon("received", "BOB@LOCALHOST", copiedPropose), nil, ""}, // JIDs compare normalised
		2: {carbon("received", "mallory@evil.localhost", copiedPropose), jingle.ErrNotCall, "own resources"},
		3: {carbon("received", "localhost", copiedPropose), jingle.ErrNotCall, "not an account's bare JID"},
		4: {carbon("received", "", copiedPropose), jingle.ErrNotCall, "not an account's bare JID"},
		5: {carbon("received", "bob@localhost/phone", copiedPropose), jingle.ErrNotCall, "not an account's bare JID"},
		6: {strings.Replace(carbon("received", "bob@localhost", copiedPropose), "to='bob@localhost/desk'", "to='carol@localhost/desk'", 1), jingle.ErrNotCall, "own resources"},
		7: {carbon("sent", "bob@localhost", copiedPropose), jingle.ErrNotCall, "not a message of the account"},
		8: {carbon("received", "bob@localhost", strings.Replace(copiedPropose, "bob@localhost/phone", "carol@localhost", 1)), jingle.ErrNotCall, "not a message of the account"},
		// The wrapper carrying a signal of its own is not a carbon.
		9:  {strings.Replace(carbon("received", "bob@localhost", copiedPropose), "<received", "<propose xmlns='urn:xmpp:jingle-message:0' id='x'/><received", 1), jingle.ErrNotCall, "of its own"},
		10: {strings.Replace(carbon("received", "bob@localhost", copiedPropose), "</received>", "</received><retract xmlns='urn:xmpp:jingle-message:0' id='x'/>", 1), jingle.ErrNotCall, "of its own"},
		// A bounced carbon, an old carbons namespace, a carbon of a carbon,
		// a copy that is no stanza, an iq: no call.
		11: {strings.Replace(carbon("received", "bob@localhost", copiedPropose), "type='chat'>", "type='error'>", 1), jingle.ErrNotCall, "bounced"},
		12: {strings.Replace(carbon("received", "bob@localhost", copiedPropose), "carbons:2", "carbons:1", 1), jingle.ErrNotCall, "no call signal"},
		13: {carbon("received", "bob@localhost", strings.TrimPrefix(strings.TrimSuffix(carbon("received", "bob@localhost", copiedPropose),
			`</forwarded></message>`), `<message to='push.localhost' from='localhost'><forwarded xmlns='urn:xmpp:forward:0'>`)), jingle.ErrNotCall, "no call signal"},
		14: {carbon("received", "bob@localhost", strings.Replace(copiedPropose, " xmlns='jabber:client'", "", 1)), jingle.ErrNotCall, "no call signal"},
		15: {carbon("received", "bob@localhost", `<iq xmlns='jabber:client' type='set' id='i' from='alice@localhost/spike' to='bob@localhost/phone'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'/></iq>`), jingle.ErrNotCall, "no call signal"},
	} {
		ev, err := jingle.ParseCall([]byte(tc.raw))
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) || err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%d: error %v, want %v saying %q", i, err, tc.err, tc.says)
			continue
		}
		if err == nil && (ev.Carbon != jingle.CarbonReceived || ev.CarbonOf.String() != "bob@localhost" || ev.Action != jingle.ActionPropose ||
			ev.From.String() != "alice@localhost/spike" || ev.To.String() != "bob@localhost/phone") {
			t.Errorf("%d: %+v", i, ev)
		}
	}
}

// MigratedTo and TieBreak are reported where XEP-0353 defines them only.
func TestParseCallSignalChildren(t *testing.T) {
	const head = `<message to='push.localhost' from='localhost'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='alice@localhost/spike' to='bob@localhost'>`
	const tail = `</message></forwarded></message>`
	const children = `<reason xmlns='urn:xmpp:jingle:1'><expired/></reason><migrated to='new'/><tie-break/>`
	for _, tc := range [...]struct {
		action   jingle.Action
		migrated string
		tieBreak bool
	}{
		{jingle.ActionPropose, "", false},
		{jingle.ActionFinish, "new", false},
		{jingle.ActionReject, "", true},
		{jingle.ActionRetract, "", true},
		{jingle.ActionProceed, "", false},
		{jingle.ActionRinging, "", false},
	} {
		raw := head + `<` + string(tc.action) + ` xmlns='urn:xmpp:jingle-message:0' id='c'>` + children + `</` + string(tc.action) + `>` + tail
		ev, err := jingle.ParseCall([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", tc.action, err)
		}
		if ev.MigratedTo != tc.migrated || ev.TieBreak != tc.tieBreak || ev.Reason != "expired" {
			t.Errorf("%s: migrated %q tie-break %v reason %q", tc.action, ev.MigratedTo, ev.TieBreak, ev.Reason)
		}
	}
	// The children must be in the JMI namespace, as the schema has them.
	raw := head + `<finish xmlns='urn:xmpp:jingle-message:0' id='c'><migrated xmlns='urn:example' to='new'/></finish>` + tail
	if ev, err := jingle.ParseCall([]byte(raw)); err != nil || ev.MigratedTo != "" {
		t.Errorf("foreign migrated: %+v %v", ev, err)
	}
}
