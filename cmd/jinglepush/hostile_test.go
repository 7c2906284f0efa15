package main

// Hostile callers (issue 13): floods, strangers, group chats, secrets in
// logs, end to end on the real servers.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

func TestHostileCallers(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *servers) {
		t.Run("a flood of proposes from one caller, a contact's call in the middle", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice, mallory := s.user("bob"), s.user("alice"), s.user("mallory")
			bc := s.login(bob, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			bc.Close()
			ac, mc := s.login(alice, "pc", false), s.login(mallory, "pc", false)
			var contact string
			for i := range 100 {
				send(t, mc, propose(bob, fmt.Sprintf("flood-%d-%s", i, uuid.NewString()[:8])))
				if i == 50 {
					contact = uuid.NewString()
					send(t, ac, propose(bob, contact))
				}
			}
			s.waitMetric(`jinglepush_calls_refused_total{reason="pair_ringing"}`, 90)
			got := s.pushes(2)
			var flood, contactRang bool
			for _, r := range got {
				id := body(t, r).Call.ID
				flood = flood || strings.HasPrefix(id, "flood-0-")
				contactRang = contactRang || id == contact
				if r.Token != d.voip {
					t.Errorf("push to %s", r.Token)
				}
			}
			if !flood || !contactRang {
				t.Errorf("rang %s and %s: want the flood's first call and the contact's", body(t, got[0]).Call.ID, body(t, got[1]).Call.ID)
			}
			if took := got[1].Received.Sub(got[0].Received); took > 5*time.Second {
				t.Errorf("the two calls rang %v apart", took)
			}
		})

		t.Run("group chat and headline proposes never ring", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			bc.Close()
			ac := s.login(alice, "pc", false)
			for _, typ := range []string{"groupchat", "headline"} {
				raw := strings.Replace(propose(bob, uuid.NewString()), "type='chat'", "type='"+typ+"'", 1)
				send(t, ac, raw)
			}
			s.settle()
			if n := len(s.apns.Requests()); n != 0 {
				t.Errorf("%d pushes for group chat and headline proposes", n)
			}
		})
	})
}

// With calls.ring_from = "contacts", a caller outside the callee's roster
// wakes nothing, and the user gets one "missed call" alert per caller and
// window; a contact rings; a roster change counts within roster_ttl. The
// roster comes through XEP-0356 (mod_privilege, roster "get": Prosody's
// deploy files grant it, ejabberd's jinglepush-contacts.yml).
func TestRingFromContacts(t *testing.T) {
	t.Run("prosody", func(t *testing.T) { ringFromContacts(t, prosodyServers(t, testenv.ProsodyOptions{})) })
	t.Run("ejabberd", func(t *testing.T) { ringFromContacts(t, ejabberdServers(t, testenv.EjabberdOptions{Contacts: true})) })
}

func ringFromContacts(t *testing.T, srv *servers) {
	s := newStack(t, srv, stackOptions{callsTOML: `ring_from = "contacts"` + "\n" + `roster_ttl = "300ms"`})
	bob, alice, mallory := s.user("bob"), s.user("alice"), s.user("mallory")
	bc := s.login(bob, "phone", false)
	d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
	ac, mc := s.login(alice, "pc", false), s.login(mallory, "pc", false)
	// alice asks to see bob's presence and bob agrees: a contact
	// (subscription "from" in bob's roster).
	subscribe(t, ac, bc, alice, bob)
	bc.Close()

	send(t, mc, propose(bob, uuid.NewString()))
	got := s.pushes(1)
	checkAlert(t, got[0], d.token, body(t, got[0]).Call.UUID, "missed", "Missed call from "+mallory)
	send(t, mc, propose(bob, uuid.NewString())) // once per caller and window
	id := uuid.NewString()
	send(t, ac, propose(bob, id))
	got = s.pushes(2)
	if got[1].Token != d.voip || body(t, got[1]).Call.ID != id {
		t.Errorf("the contact's call: %s to %s", got[1].Body, got[1].Token)
	}
	s.waitMetric(`jinglepush_calls_refused_total{reason="stranger"}`, 2)
	send(t, ac, jmi("retract", bob, id))
	s.pushes(3)

	// bob removes alice from his roster: her calls no longer ring, once
	// the roster read is older than roster_ttl.
	bc = s.login(bob, "desk", false)
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if _, err := bc.IQ(ctx, "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='"+alice+"' subscription='remove'/></query></iq>"); err != nil {
		t.Fatal(err)
	}
	bc.Close()
	refused := s.metric(`jinglepush_calls_refused_total{reason="stranger"}`)
	testenv.Eventually(t, waitShort, func() bool {
		send(t, ac, propose(bob, uuid.NewString()))
		s.settle()
		return s.metric(`jinglepush_calls_refused_total{reason="stranger"}`) > refused
	}, "a call from a removed contact to be refused")
}

// subscribe makes from a contact of to with subscription "from" in to's
// roster: from asks for to's presence, to approves.
func subscribe(t *testing.T, fromClient, toClient *xmppclient.Client, from, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	send(t, fromClient, "<presence to='"+to+"' type='subscribe'/>")
	if _, err := toClient.WaitFor(ctx, func(st xmppclient.Stanza) bool {
		return st.Name.Local == "presence" && strings.Contains(st.Raw, "subscribe")
	}); err != nil {
		t.Fatalf("%s's subscription request did not reach %s: %v", from, to, err)
	}
	send(t, toClient, "<presence to='"+from+"' type='subscribed'/>")
	testenv.Eventually(t, waitShort, func() bool {
		st, err := toClient.IQ(ctx, "<iq type='get'><query xmlns='jabber:iq:roster'/></iq>")
		return err == nil && strings.Contains(strings.ReplaceAll(st.Raw, `"`, "'"), "jid='"+from+"'") &&
			strings.Contains(strings.ReplaceAll(st.Raw, `"`, "'"), "subscription='from'")
	}, "%s in %s's roster with subscription from", from, to)
}

// Nothing secret reaches the log of a full run with every stanza logged
// (xmpp.log_xml) at debug level: no device token, node secret or other
// form value a client sent in confidence.
func TestNoSecretsInLogs(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *servers) {
		s := newStack(t, srv, stackOptions{xmppTOML: "log_xml = true", wakeOnPublish: yes()})
		bob, alice := s.user("bob"), s.user("alice")
		bc := s.login(bob, "phone", true)
		d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
		s.hibernate(bc)
		ac := s.login(alice, "pc", false)
		send(t, ac, "<message to='"+bob+"' type='chat' id='hi'><body>hello</body></message>")
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		s.apns.Wait(t, 1, waitShort)
		send(t, ac, jmi("retract", bob, id))
		s.pushes(2)
		s.stop()
		logs := s.lastLogs()
		if !strings.Contains(logs, "RECV") {
			t.Fatal("log_xml logged nothing")
		}
		for what, secret := range map[string]string{"voip token": d.voip, "token": d.token, "node secret": d.secret} {
			if strings.Contains(logs, secret) {
				t.Errorf("the %s is in the log", what)
			}
		}
	})
}

// lastLogs is the log of the instance stopped last.
func (s *stack) lastLogs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return ""
	}
	return s.last.logs.String()
}
