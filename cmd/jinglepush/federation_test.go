package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// fedRing is the ring timeout of the scenarios that wait past it: long
// enough for a call to be answered well before it, short enough to wait.
const fedRing = 5 * time.Second

// TestFederatedCalls: calls across the federation (XEP-0353 0.8 and its
// predecessors), with callers on another server (remote.test, a Prosody on
// 127.0.0.2 with no jinglepush, federated by dialback) and on the home
// server, on each home server with its operator files: Prosody with
// deploy/prosody, ejabberd with deploy/ejabberd and mod_jinglepush. Stock
// ejabberd (mod_service_log) runs too, to show its one hole rather than
// hide it.
func TestFederatedCalls(t *testing.T) {
	fed := testenv.NewFederation(t)
	remote := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: fedRemoteDomain, Addr: fedRemoteAddr, Federation: fed, WithoutJinglepush: true})
	t.Cleanup(func() { checkServerErrors(t, remote) })
	var remoteUsers atomic.Int64
	home := func(t *testing.T, srv *servers) *fedServers {
		srv.xmpp.Register(t, "idle", srv.xmpp.Info().Password)
		t.Cleanup(func() { checkServerErrors(t, srv.xmpp) })
		return &fedServers{servers: srv, remote: remote, remoteUsers: &remoteUsers, idle: srv.xmpp.Info().JID("idle")}
	}
	// Each home has its own server, Redis and jinglepush: they run side by
	// side. Within one, scenarios take turns (a server admits one
	// jinglepush at a time).
	t.Run("prosody", func(t *testing.T) {
		t.Parallel()
		fedScenarios(t, home(t, prosodyServers(t, testenv.ProsodyOptions{Domain: "prosody.test", Federation: fed})))
	})
	t.Run("ejabberd", func(t *testing.T) {
		t.Parallel()
		fedScenarios(t, home(t, ejabberdServers(t, testenv.EjabberdOptions{Domain: "ejabberd.test", Federation: fed, JinglepushModule: true})))
	})
	t.Run("ejabberd-stock", func(t *testing.T) {
		t.Parallel()
		stockScenarios(t, home(t, ejabberdServers(t, testenv.EjabberdOptions{Domain: "stock.test", Federation: fed})))
	})
}

func fedScenarios(t *testing.T, fs *fedServers) {
	t.Run("a flood from one remote domain, a local contact's call in the middle: the domain's share rings, the contact rings", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{})
		bob, d := f.offlineCallee()
		var bots []*xmppclient.Client
		for range 8 {
			bots = append(bots, f.remoteCaller("bot", bob))
		}
		lc := f.localCaller("carol")
		contact := uuid.NewString()
		for i, bot := range bots {
			send(t, bot, propose(bob, "flood-"+uuid.NewString()))
			if i == 4 {
				send(t, lc, propose(bob, contact))
			}
		}
		got := f.pushes(3) // two from the remote domain (max_ringing_per_domain), and the contact
		rang := 0
		for _, r := range got {
			if r.Token != d.voip {
				t.Errorf("push to %s", r.Token)
			}
			if body(t, r).Call.ID == contact {
				rang++
			}
		}
		if rang != 1 {
			t.Errorf("the local contact's call did not ring among %d pushes", len(got))
		}
		if n := f.metric(`jinglepush_calls_refused_total{reason="domain_busy"}`); n != 6 {
			t.Errorf("%v calls refused for the domain's share, want 6", n)
		}
	})
	t.Run("remote caller, offline callee: one VoIP push; the caller retracts: a missed-call alert", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{})
		bob, d := f.offlineCallee()
		ac := f.remoteCaller("alice", bob)
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		checkVoIP(t, f.pushes(1)[0], d.voip, id, ac.JID())
		send(t, ac, jmi("retract", bob, id)) // to the bare JID, in 0.8 too
		checkAlert(t, f.pushes(2)[1], d.token, id, "missed", "Missed call from "+bare(ac))
	})

	t.Run("remote caller, hibernated callee: one VoIP push; the woken phone rings and answers", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{ringTimeout: fedRing})
		bob, phone, d := f.callee(true)
		f.suspend(phone)
		ac := f.remoteCaller("alice", bob)
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		checkVoIP(t, f.pushes(1)[0], d.voip, id, ac.JID())
		// The app wakes once APNs has the push: jinglepush has recorded it.
		f.waitMetric(mWakesDelivered, 1)
		phone = f.resume(phone)
		waitStanza(t, phone, "propose", id)
		// XEP-0353 0.8: ringing and proceed go to the caller's full JID.
		send(t, phone, jmi("ringing", ac.JID(), id))
		f.waitMetric(mRingingPushed, 1)
		f.waitMetric(mPushToRinging, 1)
		send(t, phone, jmi("proceed", ac.JID(), id))
		f.waitMetric(`jinglepush_calls_events_total{action="proceed",outcome="answered"}`, 1)
		// The phone that answered is not told it was answered elsewhere,
		// and nobody missed the call.
		f.pastRingTimeout(ac)
		f.pushes(1)
	})

	t.Run("remote caller, online callee: no push", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{})
		bob, phone, _ := f.callee(false)
		ac := f.remoteCaller("alice", bob)
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		waitStanza(t, phone, "propose", id)
		f.waitMetric(mProposeCreated, 1)
		send(t, phone, jmi("ringing", ac.JID(), id)) // rings without a push
		f.waitMetric(`jinglepush_calls_events_total{action="ringing",outcome="not_pushed"}`, 1)
		send(t, ac, jmi("retract", bob, id))
		f.waitMetric(mRetractCanceled, 1)
		f.noPushes("to an online phone")
	})

	for _, remote := range []bool{true, false} {
		for _, carbons := range []bool{false, true} {
			where := "local"
			if remote {
				where = "remote"
			}
			t.Run(fmt.Sprintf("%s caller, answered and declined on another device, carbons %v: a dismissal push, no missed-call alert", where, carbons), func(t *testing.T) {
				answeredElsewhere(t, fs, remote, carbons)
			})
		}
	}

	t.Run("finish with migrated: the old call ends without a missed-call alert", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{ringTimeout: fedRing, callsTOML: "caller_callee_per_minute = 0"})
		bob, phone, d := f.callee(true)
		laptop := f.login(bob, "laptop", false)
		f.suspend(phone)
		ac := f.remoteCaller("alice", bob)
		moved := func(to string) string {
			return "<reason xmlns='urn:xmpp:jingle:1'><expired/></reason><migrated to='" + to + "'/>"
		}
		n := 0
		ring := func(id string) {
			t.Helper()
			send(t, ac, propose(bob, id))
			n++
			checkVoIP(t, f.pushes(n)[n-1], d.voip, id, ac.JID())
			waitStanza(t, laptop, "propose", id)
		}
		ended := func(id, event string) {
			t.Helper()
			n++
			r := f.pushes(n)[n-1]
			checkBackground(t, r, d.token, event)
			if b := body(t, r); b.Call.ID != id {
				t.Errorf("%s push for call %s, want %s", event, b.Call.ID, id)
			}
		}

		// The caller moves a ringing call to a new session (another of her
		// devices): the old one ends as migrated, the new one is a new call
		// and rings the phone, which is not live.
		a, b := uuid.NewString(), uuid.NewString()
		ring(a)
		send(t, ac, jmiWith("finish", bob, a, moved(b)))
		ended(a, "migrated")
		ring(b)
		send(t, laptop, jmi("proceed", ac.JID(), b))
		ended(b, "answered-elsewhere")

		// A call answered on the laptop moves when the caller proposes
		// anew: both sides finish the old one with migrated (0.8: to each
		// other's full JIDs), which is over already: no push for it.
		c, e := uuid.NewString(), uuid.NewString()
		ring(c)
		send(t, laptop, jmi("proceed", ac.JID(), c))
		ended(c, "answered-elsewhere")
		ring(e)
		send(t, laptop, jmiWith("finish", ac.JID(), c, moved(e)))
		send(t, ac, jmiWith("finish", laptop.JID(), c, moved(e)))
		send(t, laptop, jmi("proceed", ac.JID(), e))
		ended(e, "answered-elsewhere")

		f.pastRingTimeout(ac)
		f.pushes(n)
		if m := f.metric(`jinglepush_calls_events_total{action="finish",outcome="migrated"}`); m != 1 {
			t.Errorf("%v calls ended as migrated, want 1", m)
		}
	})

	t.Run("tie-break retract and reject: a dismissal push, no missed-call alert", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{ringTimeout: fedRing, callsTOML: "caller_callee_per_minute = 0"})
		bob, phone, d := f.callee(true)
		laptop := f.login(bob, "laptop", false)
		f.suspend(phone)
		ac := f.remoteCaller("alice", bob)
		tieBreak := "<reason xmlns='urn:xmpp:jingle:1'><expired/></reason><tie-break/>"
		n := 0
		for _, loser := range []string{"caller", "callee"} {
			// Both propose at once; the lower id wins ("i;octet").
			ids := []string{uuid.NewString(), uuid.NewString()}
			slices.Sort(ids)
			hers, his := ids[1], ids[0]
			send(t, ac, propose(bob, hers))
			send(t, laptop, propose(ac.JID(), his)) // not copied: jinglepush rings local users only
			n++
			checkVoIP(t, f.pushes(n)[n-1], d.voip, hers, ac.JID())
			if loser == "caller" {
				send(t, ac, jmiWith("retract", bob, hers, tieBreak))
			} else {
				waitStanza(t, laptop, "propose", hers)
				send(t, laptop, jmiWith("reject", ac.JID(), hers, tieBreak))
			}
			n++
			checkBackground(t, f.pushes(n)[n-1], d.token, "cancelled")
		}
		f.pastRingTimeout(ac)
		f.pushes(n)
		for _, a := range []string{"retract", "reject"} {
			if m := f.metric(`jinglepush_calls_events_total{action="` + a + `",outcome="tie-break"}`); m != 1 {
				t.Errorf("%v %s tie-breaks, want 1", m, a)
			}
		}
	})

	t.Run("groupchat and headline proposes never ring", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{})
		bob, _ := f.offlineCallee()
		carol := f.user("carol")
		pad := f.login(carol, "pad", true)
		f.registerDevice(pad, device{id: "ipad", voip: token(), token: token()})
		f.suspend(pad)
		for _, c := range []*xmppclient.Client{f.remoteCaller("alice", bob), f.localCaller("dave")} {
			for _, to := range []string{bob, carol, pad.JID()} {
				for _, typ := range []string{"groupchat", "headline"} {
					send(t, c, proposeOfType(typ, to, uuid.NewString()))
				}
			}
		}
		f.noPushes("for group chat and headline proposes")
		// The operator files copy none of them: jinglepush sees no propose
		// at all (where a server copies one, it is counted as
		// not_one_to_one: the ejabberd-stock scenario).
		if m := f.metric(mProposeCreated) + f.metric(mNotOneToOne); m != 0 {
			t.Errorf("jinglepush saw %v group chat or headline proposes", m)
		}
	})
}

// answeredElsewhere: bob's phone is suspended (hibernated), his laptop
// online; the caller (remote or local) calls five times, and each time the
// laptop answers or declines in one of the ways XEP-0353's versions say.
// The phone gets its VoIP push, then a background push that dismisses its
// ringing screen, and no missed-call alert when the ring timeout passes.
func answeredElsewhere(t *testing.T, fs *fedServers, remote, carbons bool) {
	f := newFedStack(t, fs, stackOptions{ringTimeout: fedRing, callsTOML: "caller_callee_per_minute = 0"})
	bob, phone, d := f.callee(true)
	laptop := f.login(bob, "laptop", false)
	var ac *xmppclient.Client
	if remote {
		ac = f.remoteCaller("alice", bob)
	} else {
		ac = f.localCaller("alice")
	}
	if carbons {
		enableCarbons(t, phone)
		enableCarbons(t, laptop)
	}
	f.suspend(phone)
	busy := "<reason xmlns='urn:xmpp:jingle:1'><busy/></reason>"
	answers := []struct {
		name, action, to, inner, event string
	}{
		{"proceed to the caller's full JID (0.8)", "proceed", ac.JID(), "", "answered-elsewhere"},
		{"proceed to the caller's bare JID (before 0.8)", "proceed", bare(ac), "", "answered-elsewhere"},
		{"accept to the callee's own bare JID (before 0.4)", "accept", bob, "", "answered-elsewhere"},
		{"reject to the caller's full JID, no reason (0.7)", "reject", ac.JID(), "", "declined-elsewhere"},
		{"reject to the caller's bare JID, busy", "reject", bare(ac), busy, "declined-elsewhere"},
	}
	n := 0
	for _, a := range answers {
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		checkVoIP(t, f.pushes(n + 1)[n], d.voip, id, ac.JID())
		waitStanza(t, laptop, "propose", id)
		send(t, laptop, jmiWith(a.action, a.to, id, a.inner))
		r := f.pushes(n + 2)[n+1]
		checkBackground(t, r, d.token, a.event)
		if b := body(t, r); b.Call.ID != id || b.Account != bob {
			t.Errorf("%s: push %s, want call %s of %s", a.name, r.Body, id, bob)
		}
		n += 2
	}
	f.pastRingTimeout(ac)
	f.pushes(n)
	if carbons {
		// The carbons of the laptop's answers were queued for the phone,
		// and changed nothing above.
		phone = f.resume(phone)
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		defer cancel()
		if _, err := phone.WaitFor(ctx, func(st xmppclient.Stanza) bool {
			return strings.Contains(st.Raw, "urn:xmpp:carbons:2") && strings.Contains(st.Raw, "<proceed ")
		}); err != nil {
			t.Errorf("the phone got no carbon of the laptop's proceed: %v", err)
		}
	}
	for metric, want := range map[string]float64{
		`jinglepush_calls_events_total{action="proceed",outcome="answered"}`: 2,
		`jinglepush_calls_events_total{action="accept",outcome="answered"}`:  1,
		`jinglepush_calls_events_total{action="reject",outcome="declined"}`:  2,
	} {
		if m := f.metric(metric); m != want {
			t.Errorf("%s = %v, want %v", metric, m, want)
		}
	}
}

// stockScenarios: ejabberd with the stock operator file (mod_service_log
// copies every stanza of local sessions). A remote caller's propose to an
// offline user reaches jinglepush in no form (deploy/ejabberd/README.md,
// "What ejabberd still cannot do"): that call never rings, and this test
// says so; mod_jinglepush closes it (fedScenarios). The firehose also
// copies group chat and headline proposes, which jinglepush counts and
// never rings.
func stockScenarios(t *testing.T, fs *fedServers) {
	t.Run("the hole: a remote caller's propose to an offline callee never rings", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{})
		bob, _ := f.offlineCallee()
		// The barrier's messages go to an online user: mod_service_log
		// would not copy them to bob either.
		ac := f.remoteCaller("alice", f.login(f.user("carol"), "pc", false).JID())
		send(t, ac, propose(bob, uuid.NewString()))
		// All that comes is the publish of offline storage, which does not
		// say "call".
		f.waitMetric(mPublishesEmpty, 1)
		f.noPushes("for a remote caller's propose to an offline callee: the hole is closed, update deploy/ejabberd/README.md")
		if m := f.metric(mProposeCreated); m != 0 {
			t.Errorf("jinglepush saw %v proposes", m)
		}
	})

	t.Run("remote caller, hibernated callee: one VoIP push", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{})
		bob, phone, d := f.callee(true)
		f.suspend(phone)
		ac := f.remoteCaller("alice", bob)
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		checkVoIP(t, f.pushes(1)[0], d.voip, id, ac.JID())
	})

	t.Run("groupchat and headline proposes are counted, never rung", func(t *testing.T) {
		f := newFedStack(t, fs, stackOptions{})
		bob, phone, _ := f.callee(true)
		f.suspend(phone)
		dc := f.localCaller("dave")
		for _, typ := range []string{"groupchat", "headline"} {
			send(t, dc, proposeOfType(typ, bob, uuid.NewString()))
		}
		// The caller's session copies each once at least.
		f.waitMetric(mNotOneToOne, 2)
		f.noPushes("for group chat and headline proposes")
		if m := f.metric(mProposeCreated); m != 0 {
			t.Errorf("%v calls created", m)
		}
		t.Logf("%v group chat and headline proposes counted", f.metric(mNotOneToOne))
	})
}
