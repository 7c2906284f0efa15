package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/pushnotify"
)

// The call lifecycle of DESIGN.md section 4, scenario by scenario, on each
// server.

func yes() *bool { t := true; return &t }

// checkAlert checks an alert push about a call.
func checkAlert(t *testing.T, r testenv.Request, tok, callUUID, event, text string) {
	t.Helper()
	h := r.Header
	if r.Token != tok || h.Get("apns-push-type") != "alert" || h.Get("apns-topic") != bundleID ||
		h.Get("apns-priority") != "10" || h.Get("apns-collapse-id") != callUUID {
		t.Errorf("alert push: token %s, headers %v", r.Token, h)
	}
	b := body(t, r)
	alert, _ := b.APS["alert"].(map[string]any)
	if b.Event != event || alert["body"] != text || b.Call.UUID != callUUID {
		t.Errorf("alert body %s, want event %s and %q", r.Body, event, text)
	}
}

// checkBackground checks a background push that ends a ringing screen.
func checkBackground(t *testing.T, r testenv.Request, tok, event string) {
	t.Helper()
	h := r.Header
	if r.Token != tok || h.Get("apns-push-type") != "background" || h.Get("apns-topic") != bundleID || h.Get("apns-priority") != "5" {
		t.Errorf("background push: token %s, headers %v", r.Token, h)
	}
	b := body(t, r)
	if b.Event != event || b.APS["content-available"] != float64(1) || b.APS["alert"] != nil {
		t.Errorf("background body %s, want event %s", r.Body, event)
	}
}

func TestCallLifecycle(t *testing.T) {
	forEachSetup(t, lifecycleOnEveryRedis, func(t *testing.T, srv *servers) {
		t.Run("hibernated callee gets its push", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, _, ac, d := s.hibernatedCallee()
			id := uuid.NewString()
			send(t, ac, propose(bob, id))
			r := s.pushes(1)[0]
			if r.Token != d.voip || r.Header.Get("apns-push-type") != "voip" || body(t, r).Call.ID != id {
				t.Errorf("push %v %s", r.Header, r.Body)
			}
		})

		t.Run("caller retracts: a missed-call alert, no second VoIP push", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			bc.Close()
			ac := s.login(alice, "pc", false)
			id := "call-" + uuid.NewString()[:8] // not a UUID: the UUID is derived
			send(t, ac, propose(bob, id))
			s.apns.Wait(t, 1, waitShort)
			send(t, ac, jmi("retract", bob, id))
			send(t, ac, propose(bob, id)) // a late duplicate must not ring again
			got := s.pushes(2)
			callUUID := pushnotify.CallUUID(alice, id)
			if got[0].Header.Get("apns-push-type") != "voip" || body(t, got[0]).Call.UUID != callUUID {
				t.Errorf("first push %v %s", got[0].Header, got[0].Body)
			}
			checkAlert(t, got[1], d.token, callUUID, "missed", "Missed call from "+alice)
		})

		t.Run("ring timeout: a missed-call alert", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{ringTimeout: 3 * time.Second})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			bc.Close()
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			send(t, ac, propose(bob, id))
			got := s.pushes(1)
			got = append(got[:0], s.apns.Wait(t, 2, waitShort)...)
			if late := got[1].Received.Sub(got[0].Received); late < 2500*time.Millisecond {
				t.Errorf("missed-call alert %v after the VoIP push, before the ring timeout", late)
			}
			checkAlert(t, got[1], d.token, id, "missed", "Missed call from "+alice)
			s.pushes(2)
		})

		t.Run("answered elsewhere", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			phone := s.login(bob, "phone", false)
			d := s.registerDevice(phone, device{id: "iphone", voip: token(), token: token()})
			phone.Close()
			desk := s.login(bob, "desk", false) // a desktop client, online
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			send(t, ac, propose(bob, id))
			s.apns.Wait(t, 1, waitShort)
			send(t, desk, jmi("proceed", alice+"/pc", id))
			got := s.pushes(2)
			checkBackground(t, got[1], d.token, "answered-elsewhere")
		})

		t.Run("declined elsewhere", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			phone := s.login(bob, "phone", true)
			d := s.registerDevice(phone, device{id: "iphone", voip: token(), token: token()})
			s.hibernate(phone)
			desk := s.login(bob, "desk", false)
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			send(t, ac, propose(bob, id))
			s.apns.Wait(t, 1, waitShort)
			send(t, desk, jmi("reject", alice+"/pc", id))
			got := s.pushes(2)
			checkBackground(t, got[1], d.token, "declined-elsewhere")
		})

		t.Run("duplicate propose rings once", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			s.registerDevice(bc, device{id: "iphone", voip: token()})
			bc.Close()
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			for range 3 {
				send(t, ac, propose(bob, id))
			}
			s.waitMetric(`jinglepush_calls_events_total{action="propose",outcome="duplicate"}`, 2)
			s.pushes(1)
		})

		t.Run("two devices each get one push", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			phone := s.login(bob, "phone", false)
			d1 := s.registerDevice(phone, device{id: "iphone", voip: token()})
			pad := s.login(bob, "pad", true)
			d2 := s.registerDevice(pad, device{id: "ipad", voip: token()})
			phone.Close()
			s.hibernate(pad)
			ac := s.login(alice, "pc", false)
			send(t, ac, propose(bob, uuid.NewString()))
			got := s.pushes(2)
			tokens := map[string]bool{got[0].Token: true, got[1].Token: true}
			if !tokens[d1.voip] || !tokens[d2.voip] {
				t.Errorf("pushed %s and %s, want %s and %s", got[0].Token, got[1].Token, d1.voip, d2.voip)
			}
		})

		t.Run("device without VoIP token gets alerts", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", token: token()})
			bc.Close()
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			send(t, ac, propose(bob, id))
			s.apns.Wait(t, 1, waitShort)
			send(t, ac, jmi("retract", bob, id))
			got := s.pushes(2)
			checkAlert(t, got[0], d.token, id, "incoming", "Incoming call from "+alice)
			checkAlert(t, got[1], d.token, id, "missed", "Missed call from "+alice)
		})

		t.Run("component killed and restarted mid-call: no duplicate push", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{process: true, ringTimeout: 6 * time.Second})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			bc.Close()
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			send(t, ac, propose(bob, id))
			s.apns.Wait(t, 1, waitShort)
			// Killed once the push is recorded as delivered. (Killed between
			// APNs taking the push and that record, the process would leave
			// a wake that the next one pushes again: TestKilledMidPush.)
			s.waitMetric(`jinglepush_calls_wakes_settled_total{outcome="delivered"}`, 1)
			s.kill()
			s.start()
			send(t, ac, propose(bob, id)) // the caller's client retries
			// The restarted process ends the call at its ring timeout.
			got := s.apns.Wait(t, 2, waitShort)
			checkAlert(t, got[1], d.token, id, "missed", "Missed call from "+alice)
			s.pushes(2)
		})

		t.Run("session-initiate to a hibernated phone", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice, ac, d := s.hibernatedCallee()
			sid := uuid.NewString()
			send(t, ac, fmt.Sprintf("<iq type='set' to='%s/phone' id='si1'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='%s' initiator='%s/pc'><content creator='initiator' name='voice'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle></iq>", bob, sid, alice))
			s.apns.Wait(t, 1, waitShort)
			send(t, ac, fmt.Sprintf("<iq type='set' to='%s/phone' id='st1'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='%s'><reason><cancel/></reason></jingle></iq>", bob, sid))
			got := s.pushes(2)
			if got[0].Token != d.voip || body(t, got[0]).Call.ID != sid {
				t.Errorf("VoIP push %s", got[0].Body)
			}
			checkAlert(t, got[1], d.token, sid, "missed", "Missed call from "+alice)
		})

		t.Run("publish before propose", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{wakeOnPublish: yes()})
			bob, alice, carol := s.user("bob"), s.user("alice"), s.user("carol")
			bc := s.login(bob, "phone", true)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			s.hibernate(bc)
			cc := s.login(carol, "pc", false)
			send(t, cc, "<message to='"+bob+"' type='chat' id='hi'><body>hello bob</body></message>")
			s.waitMetric(`jinglepush_push_publishes_total{outcome="hold"}`, 1)
			ac := s.login(alice, "pc", false)
			send(t, ac, propose(bob, uuid.NewString()))
			s.waitMetric(`jinglepush_calls_wakes_total{kind="voip",why="publish"}`, 1)
			s.waitMetric(`jinglepush_push_held_messages_total{outcome="call"}`, 1) // the hold ended: the call claimed it
			got := s.pushes(1)
			if got[0].Token != d.voip {
				t.Errorf("push to %s", got[0].Token)
			}
			if n := s.metric(`jinglepush_push_held_messages_total{outcome="call"}`); n != 1 {
				t.Errorf("held message not claimed by the call: %v", n)
			}
		})

		t.Run("propose before publish", func(t *testing.T) {
			// Prosody publishes for a propose even to a live phone, about
			// when it forwards its copy: with wake_on_publish on, that wakes
			// it.
			s := newStack(t, srv, stackOptions{wakeOnPublish: yes()})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", true)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			if srv.xmpp.Info().Software != "prosody" {
				// ejabberd publishes only for an unreachable phone, and also
				// when a session goes into hibernation with stanzas not
				// acknowledged: acknowledge them, so that the only publish
				// is the one for the propose.
				if err := bc.Ack(); err != nil {
					t.Fatal(err)
				}
				s.hibernate(bc)
			}
			ac := s.login(alice, "pc", false)
			send(t, ac, propose(bob, uuid.NewString()))
			s.waitMetric(`jinglepush_calls_wakes_total{kind="voip",why="publish"}`, 1)
			if got := s.pushes(1); got[0].Token != d.voip {
				t.Errorf("push to %s", got[0].Token)
			}
			// On ejabberd the publish comes from the callee's session after
			// the caller's copy, so while the call rings. (On Prosody,
			// cloud_notify's urgent path races the firewall's copy: either
			// order wakes the phone.)
			if srv.xmpp.Info().Software == "ejabberd" {
				if n := s.metric(`jinglepush_push_publishes_total{outcome="call"}`); n != 1 {
					t.Errorf("%v publishes belonged to the ringing call, want 1", n)
				}
			}
		})

		t.Run("a publish with no call is a message alert", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, carol := s.user("bob"), s.user("carol")
			bc := s.login(bob, "phone", true)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			// A second registration, from another client of bob's, with a
			// node jinglepush does not know. (Another client: ejabberd keeps
			// one registration per session, a second enable replaces the
			// first.)
			pad := s.login(bob, "pad", true)
			ctx, cancel := context.WithTimeout(context.Background(), waitShort)
			defer cancel()
			if err := pad.EnablePush(ctx, s.info.ComponentDomain, "no-such-node", map[string]string{"secret": "x"}); err != nil {
				t.Fatal(err)
			}
			s.hibernate(pad)
			s.hibernate(bc)
			cc := s.login(carol, "pc", false)
			send(t, cc, "<message to='"+bob+"' type='chat' id='hi'><body>hello bob</body></message>")
			r := s.pushes(1)[0]
			h := r.Header
			if r.Token != d.token || h.Get("apns-push-type") != "alert" || h.Get("apns-topic") != bundleID {
				t.Errorf("message alert %v", h)
			}
			b := body(t, r)
			if b.APS["mutable-content"] != float64(1) || b.Account != bob {
				t.Errorf("message alert body %s", r.Body)
			}
			s.waitMetric(`jinglepush_push_publishes_total{outcome="unknown_node"}`, 1)
		})

		t.Run("a publish that carries no message makes no alert", func(t *testing.T) {
			// Both servers publish for a chat state to a hibernated phone:
			// Prosody with no body, ejabberd an empty <notification/> (as
			// for any stanza, and for the stanzas a session had not
			// acknowledged when it went into hibernation).
			s := newStack(t, srv, stackOptions{})
			bob, carol := s.user("bob"), s.user("carol")
			bc := s.login(bob, "phone", true)
			s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			s.hibernate(bc)
			cc := s.login(carol, "pc", false)
			send(t, cc, "<message to='"+bob+"' type='chat' id='typing'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
			s.waitMetric(`jinglepush_push_publishes_total{outcome="empty"}`, 1) // never held: nothing is due later
			s.settle()
			if got := s.apns.Requests(); len(got) != 0 {
				t.Errorf("%d pushes for a chat state", len(got))
			}
		})
	})
}

// TestStaleProposeNeverRings: the component was down while a propose waited
// for a hibernated phone; when the hibernation ends, Prosody re-forwards
// the queued propose with its old <delay/>, long after the call.
func TestStaleProposeNeverRings(t *testing.T) {
	srv := prosodyServers(t, testenv.ProsodyOptions{
		SmacksHibernation: 3 * time.Second,
		ExtraLua:          []string{"push_max_hibernation_timeout = 3"},
	})
	s := newStack(t, srv, stackOptions{staleAfter: time.Second})
	bob, alice := s.user("bob"), s.user("alice")
	bc := s.login(bob, "phone", true)
	s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
	s.stop()
	s.hibernate(bc)
	ac := s.login(alice, "pc", false)
	off := srv.xmpp.LogOffset()
	send(t, ac, propose(bob, uuid.NewString()))
	time.Sleep(1500 * time.Millisecond) // the queued propose grows older than stale_after
	s.start()
	srv.xmpp.WaitForLog(t, off, "Hibernating too long", 15*time.Second)
	s.waitMetric(`jinglepush_calls_events_total{action="propose",outcome="stale"}`, 1)
	s.settle()
	if got := s.apns.Requests(); len(got) != 0 {
		t.Errorf("%d pushes for a stale propose", len(got))
	}
}
