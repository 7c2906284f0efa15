package jingle_test

import (
	"errors"
	"reflect"
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
}

func viewCall(e jingle.CallEvent) callView {
	v := callView{
		Action: e.Action, ID: e.ID, From: e.From.String(), To: e.To.String(),
		Media: e.Media, Reason: e.Reason,
		WrapperFrom: e.Wrapper.From.String(), WrapperTo: e.Wrapper.To.String(), WrapperID: e.Wrapper.ID,
		Jingle: e.Jingle, StanzaID: e.StanzaID, Undeliverable: e.Undeliverable(),
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
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-accept",
	}},
	15: {file: "jmi-proceed.xml", want: callView{
		Action: jingle.ActionProceed, ID: "call1", From: "bob@localhost/desktop", To: "alice@localhost/spike",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-proceed",
	}},
	16: {file: "jmi-reject-busy.xml", want: callView{
		Action: jingle.ActionReject, ID: "call1", From: "bob@localhost/phone", To: "alice@localhost/spike", Reason: "busy",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-reject",
	}},
	17: {file: "jmi-finish.xml", want: propose(func(v *callView) {
		v.Action, v.Media, v.Reason, v.To, v.StanzaID = jingle.ActionFinish, nil, "success", "bob@localhost/phone", "jmi-finish"
	})},
	18: {file: "jmi-ringing.xml", want: callView{
		Action: jingle.ActionRinging, ID: "call1", From: "bob@localhost/phone", To: "alice@localhost/spike",
		WrapperFrom: "localhost", WrapperTo: "push.localhost", StanzaID: "jmi-ringing",
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
	28: {file: "jmi-carbon-propose.xml", err: jingle.ErrNotCall},
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
