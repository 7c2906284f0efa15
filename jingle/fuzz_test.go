package jingle_test

import (
	"errors"
	"slices"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/jinglepush/jinglepush/jingle"
)

// checkErr fails unless err is nil or wraps exactly one of the allowed
// sentinels.
func checkErr(t *testing.T, err error, allowed ...error) {
	t.Helper()
	if err == nil {
		return
	}
	n := 0
	for _, s := range []error{jingle.ErrNotCall, jingle.ErrMalformed} {
		if errors.Is(err, s) {
			n++
			if !slices.Contains(allowed, s) {
				t.Fatalf("unexpected error class: %v", err)
			}
		}
	}
	if n != 1 {
		t.Fatalf("error wraps %d sentinels: %v", n, err)
	}
}

func FuzzClassify(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		k := jingle.Classify(raw)
		if k < jingle.KindIgnore || k > jingle.KindPrivilege {
			t.Fatalf("Classify = %d", k)
		}
		if k2 := jingle.Classify(raw); k2 != k {
			t.Fatalf("Classify not deterministic: %v then %v", k, k2)
		}
		// Whatever a parser accepts, Classify must have routed to it.
		if _, err := jingle.ParseCall(raw); err == nil && k != jingle.KindCall {
			t.Fatalf("ParseCall accepted what Classify calls %v", k)
		}
		if _, err := jingle.ParsePresence(raw); err == nil && k != jingle.KindPresence {
			t.Fatalf("ParsePresence accepted what Classify calls %v", k)
		}
		if _, err := jingle.ParseIQ(raw); err == nil && k != jingle.KindIQ {
			t.Fatalf("ParseIQ accepted what Classify calls %v", k)
		}
		if _, err := jingle.ParsePrivilege(raw); err == nil && k != jingle.KindPrivilege {
			t.Fatalf("ParsePrivilege accepted what Classify calls %v", k)
		}
		if _, err := jingle.ParseRoster(raw); err == nil && k != jingle.KindIQ {
			t.Fatalf("ParseRoster accepted what Classify calls %v", k)
		}
	})
}

func FuzzParseCall(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := jingle.ParseCall(raw)
		checkErr(t, err, jingle.ErrNotCall, jingle.ErrMalformed)
		if err != nil {
			return
		}
		if k := jingle.Classify(raw); k != jingle.KindCall {
			t.Fatalf("parsed a call from what Classify calls %v", k)
		}
		switch ev.Action {
		case jingle.ActionPropose, jingle.ActionRetract, jingle.ActionAccept, jingle.ActionProceed,
			jingle.ActionReject, jingle.ActionFinish, jingle.ActionRinging,
			jingle.ActionInvite, jingle.ActionInviteRetract, jingle.ActionInviteAccept, jingle.ActionInviteReject, jingle.ActionInviteLeft:
		default:
			t.Fatalf("action %q", ev.Action)
		}
		if ev.MessageType == "error" || ev.Jingle && ev.MessageType != "" {
			t.Fatalf("message type %q (jingle %v)", ev.MessageType, ev.Jingle)
		}
		if ev.MigratedTo != "" && ev.Action != jingle.ActionFinish || len(ev.MigratedTo) > 256 {
			t.Fatalf("migrated to %q on %s", ev.MigratedTo, ev.Action)
		}
		if ev.TieBreak && ev.Action != jingle.ActionReject && ev.Action != jingle.ActionRetract {
			t.Fatalf("tie-break on %s", ev.Action)
		}
		// A carbon is the account's own copy of one of its messages.
		switch ev.Carbon {
		case "":
			if ev.CarbonOf.String() != "" {
				t.Fatalf("carbon of %s without Carbon", ev.CarbonOf)
			}
		case jingle.CarbonSent, jingle.CarbonReceived:
			account, copied := ev.CarbonOf, ev.To
			if ev.Carbon == jingle.CarbonSent {
				copied = ev.From
			}
			if account.Localpart() == "" || account.Resourcepart() != "" || !copied.Bare().Equal(account) || ev.Jingle {
				t.Fatalf("%s carbon of %s: %s → %s", ev.Carbon, account, ev.From, ev.To)
			}
		default:
			t.Fatalf("carbon %q", ev.Carbon)
		}
		if ev.ID == "" || len(ev.ID) > 256 {
			t.Fatalf("id %q", ev.ID)
		}
		if ev.From.String() == "" || ev.To.String() == "" || ev.Wrapper.From.String() == "" || ev.Wrapper.To.String() == "" {
			t.Fatalf("missing address in %+v", ev)
		}
		if len(ev.Media) > 16 || len(slices.Compact(slices.Sorted(slices.Values(ev.Media)))) != len(ev.Media) {
			t.Fatalf("media %q", ev.Media)
		}
		if len(ev.Media) > 0 && ev.Action != jingle.ActionPropose {
			t.Fatalf("media on %s", ev.Action)
		}
	})
}

func FuzzParseIQ(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		iq, err := jingle.ParseIQ(raw)
		checkErr(t, err, jingle.ErrMalformed)
		if (iq.Command != nil) != (iq.Payload == jingle.PayloadCommand) || (iq.Publish != nil) != (iq.Payload == jingle.PayloadPublish) {
			t.Fatalf("payload %v with command %v publish %v", iq.Payload, iq.Command, iq.Publish)
		}
		if err != nil {
			return
		}
		if k := jingle.Classify(raw); k != jingle.KindIQ {
			t.Fatalf("parsed an IQ from what Classify calls %v", k)
		}
		if iq.ID == "" {
			t.Fatal("no id")
		}
		switch iq.Type {
		case stanza.GetIQ, stanza.SetIQ, stanza.ResultIQ, stanza.ErrorIQ:
		default:
			t.Fatalf("type %q", iq.Type)
		}
		// The answer built from what was parsed must itself parse.
		reply := encode(t, iq.Result(nil))
		back, err := jingle.ParseIQ([]byte(reply))
		if err != nil {
			t.Fatalf("reply %s: %v", reply, err)
		}
		if back.ID != iq.ID || !back.To.Equal(iq.From) || !back.From.Equal(iq.To) {
			t.Fatalf("reply %s does not answer %+v", reply, iq.IQ)
		}
	})
}

func FuzzParsePresence(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := jingle.ParsePresence(raw)
		checkErr(t, err, jingle.ErrMalformed)
		if err != nil {
			return
		}
		if k := jingle.Classify(raw); k != jingle.KindPresence {
			t.Fatalf("parsed a presence from what Classify calls %v", k)
		}
		if p.From.String() == "" {
			t.Fatal("no from")
		}
	})
}

func FuzzParsePrivilege(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := jingle.ParsePrivilege(raw)
		checkErr(t, err, jingle.ErrMalformed)
		if err != nil {
			return
		}
		if p.Namespace != jingle.NSPrivilege1 && p.Namespace != jingle.NSPrivilege2 {
			t.Fatalf("namespace %q", p.Namespace)
		}
	})
}

func FuzzParseRoster(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := jingle.ParseRoster(raw)
		checkErr(t, err, jingle.ErrMalformed)
		if err != nil {
			return
		}
		if k := jingle.Classify(raw); k != jingle.KindIQ {
			t.Fatalf("parsed a roster from what Classify calls %v", k)
		}
		if r.Account.Localpart() == "" || r.Account.Resourcepart() != "" || r.Push && len(r.Items) != 1 {
			t.Fatalf("roster %+v", r)
		}
		for _, it := range r.Items {
			switch it.Subscription {
			case "none", "to", "from", "both":
			case "remove":
				if !r.Push {
					t.Fatalf("remove in a result: %+v", r)
				}
			default:
				t.Fatalf("subscription %q", it.Subscription)
			}
			if it.JID.String() == "" {
				t.Fatalf("item without jid: %+v", r)
			}
		}
	})
}
