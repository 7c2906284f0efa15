package testenv_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// rawComponent is a XEP-0114 connection done by hand, to see what the
// server sends a component without any library in between.
type rawComponent struct {
	conn net.Conn
	in   chan xmppclient.Stanza
	err  chan error // why the stream ended
	held []xmppclient.Stanza
}

func dialComponent(t testing.TB, info testenv.ServerInfo) *rawComponent {
	t.Helper()
	conn, err := net.DialTimeout("tcp", info.ComponentAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(conn, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", info.ComponentDomain)
	if err != nil {
		t.Fatal(err)
	}
	er := xmppclient.NewElementReader(conn)
	h, err := er.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if h.XMLNS != "jabber:component:accept" || h.From != info.ComponentDomain || h.ID == "" {
		t.Errorf("component stream header %+v", h)
	}
	sum := sha1.Sum([]byte(h.ID + info.Secret))
	if _, err := fmt.Fprintf(conn, "<handshake>%s</handshake>", hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	st, err := er.Next()
	if err != nil {
		t.Fatal(err)
	}
	if st.Name.Local != "handshake" {
		t.Fatalf("handshake answered with %s", st.Raw)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &rawComponent{conn: conn, in: make(chan xmppclient.Stanza, 100), err: make(chan error, 1)}
	go func() {
		for {
			st, err := er.Next()
			if err != nil {
				c.err <- err
				close(c.in)
				return
			}
			c.in <- st
		}
	}()
	return c
}

// expect returns the first stanza, held back or new, for which match is
// true; the others are held for later calls.
func (c *rawComponent) expect(t *testing.T, what string, match func(xmppclient.Stanza) bool) xmppclient.Stanza {
	t.Helper()
	for i, st := range c.held {
		if match(st) {
			c.held = append(c.held[:i], c.held[i+1:]...)
			return st
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case st, ok := <-c.in:
			if !ok {
				t.Fatalf("component stream ended (%v) while waiting for %s", <-c.err, what)
			}
			if match(st) {
				return st
			}
			c.held = append(c.held, st)
		case <-timeout:
			var got []string
			for _, st := range c.held {
				got = append(got, st.Raw)
			}
			t.Fatalf("component: no %s within 10s; received:\n%s", what, strings.Join(got, "\n"))
		}
	}
}

// callCopy is a firewall copy of a JMI message: <message from=host
// to=component><forwarded><message xmlns='jabber:client'>...
type callCopy struct {
	From      string `xml:"from,attr"`
	To        string `xml:"to,attr"`
	Forwarded struct {
		Message struct {
			From    string `xml:"from,attr"`
			To      string `xml:"to,attr"`
			ID      string `xml:"id,attr"`
			Propose *struct {
				ID string `xml:"id,attr"`
			} `xml:"urn:xmpp:jingle-message:0 propose"`
			Delay *struct {
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
		} `xml:"jabber:client message"`
	} `xml:"urn:xmpp:forward:0 forwarded"`
}

// copyOf matches the copy of propose callID sent to the JID to.
func copyOf(to, callID string, got *callCopy) func(xmppclient.Stanza) bool {
	return func(st xmppclient.Stanza) bool {
		var c callCopy
		if st.Name.Local != "message" || st.To() != to || st.Unmarshal(&c) != nil {
			return false
		}
		if p := c.Forwarded.Message.Propose; p == nil || p.ID != callID {
			return false
		}
		*got = c
		return true
	}
}

// jingleCopyOf matches the copy of a forwarded Jingle session-initiate
// with sid sent to the JID to.
func jingleCopyOf(to, sid string) func(xmppclient.Stanza) bool {
	return jingleCopy(to, "session-initiate", sid)
}

func sessionInitiate(to, sid string) string {
	return "<iq type='set' id='si-" + sid + "' to='" + to + "'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='" + sid + "'>" +
		"<content creator='initiator' name='voice'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>" +
		"<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle></iq>"
}

func propose(to, callID string) string {
	return "<message to='" + to + "' type='chat' id='jmi-" + callID + "'>" +
		"<propose xmlns='urn:xmpp:jingle-message:0' id='" + callID + "'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>" +
		"<store xmlns='urn:xmpp:hints'/></message>"
}

// TestProsodyDeployFiles runs Prosody with deploy/prosody/jinglepush.cfg.lua
// and jinglepush.pfw and checks, from a raw component connection, everything
// jinglepush relies on: the XEP-0356 grant, the copy of every propose
// (deliver chain), and the copy to undeliverable@ when the callee is offline
// or hibernated.
func TestProsodyDeployFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{Users: []string{"alice", "bob"}, Secret: "s3cr'et"})
	comp := p.ComponentDomain
	undeliverable := "undeliverable@" + comp

	for _, name := range []string{"jinglepush.cfg.lua", "jinglepush.pfw"} {
		checkFilledIn(t, filepath.Join(p.Dir, name), comp)
	}
	if !strings.Contains(p.Log(), "firewall\tdebug\tLoaded "+filepath.Join(p.Dir, "jinglepush.pfw")) {
		t.Error("mod_firewall did not log loading jinglepush.pfw")
	}

	c := dialComponent(t, p.Info())
	c.expect(t, "the XEP-0356 grant", func(st xmppclient.Stanza) bool {
		return st.Name.Local == "message" && st.From() == p.Domain &&
			strings.Contains(st.Raw, "urn:xmpp:privilege:2") && strings.Contains(st.Raw, "access='presence'") &&
			strings.Contains(st.Raw, "type='managed_entity'")
	})

	login := func(user string, sm bool) *xmppclient.Client { return loginPhone(ctx, t, p.Info(), user, sm) }
	alice := login("alice", false)
	c.expect(t, "alice's presence (XEP-0356)", func(st xmppclient.Stanza) bool {
		return st.Name.Local == "presence" && st.From() == alice.JID() && st.Type() == ""
	})

	// bob has never logged in: offline.
	if err := alice.Send(propose(p.JID("bob"), "call1")); err != nil {
		t.Fatal(err)
	}
	var deliver, offline callCopy
	c.expect(t, "the deliver-chain copy of call1", copyOf(comp, "call1", &deliver))
	c.expect(t, "the offline-chain copy of call1", copyOf(undeliverable, "call1", &offline))
	for _, cp := range []callCopy{deliver, offline} {
		if cp.From != p.Domain || cp.Forwarded.Message.From != alice.JID() || cp.Forwarded.Message.To != p.JID("bob") {
			t.Errorf("copy %+v", cp)
		}
	}

	// A session-initiate to bob's (offline) full JID: alice gets an error,
	// the component a copy from the deliver chain only (IQs never go
	// offline).
	_, err := alice.IQ(ctx, sessionInitiate(p.JID("bob")+"/phone", "s1"))
	var stanzaErr *xmppclient.StanzaError
	if !errors.As(err, &stanzaErr) || stanzaErr.Condition != "service-unavailable" {
		t.Errorf("session-initiate to offline bob: %v", err)
	}
	c.expect(t, "the deliver-chain copy of session-initiate s1", jingleCopyOf(comp, "s1"))

	// bob comes online with XEP-0198 and loses his connection: hibernated.
	bob := login("bob", true)
	c.expect(t, "bob's presence", func(st xmppclient.Stanza) bool {
		return st.Name.Local == "presence" && st.From() == bob.JID() && st.Type() == ""
	})
	mark := p.LogOffset()
	if err := bob.Drop(); err != nil {
		t.Fatal(err)
	}
	p.WaitForLog(t, mark, testenv.ProsodyHibernationLog, 10*time.Second)

	if err := alice.Send(propose(p.JID("bob"), "call2")); err != nil {
		t.Fatal(err)
	}
	var hibernated callCopy
	c.expect(t, "the deliver-chain copy of call2", copyOf(comp, "call2", &deliver))
	c.expect(t, "the hibernated-chain copy of call2", copyOf(undeliverable, "call2", &hibernated))
	if hibernated.Forwarded.Message.Delay == nil {
		t.Errorf("the hibernated copy has no <delay/> (smacks adds one to queued stanzas)")
	}

	// A session-initiate to the hibernated full JID is queued (no answer)
	// and copied by both chains.
	if err := alice.Send(sessionInitiate(bob.JID(), "s2")); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "the deliver-chain copy of session-initiate s2", jingleCopyOf(comp, "s2"))
	c.expect(t, "the hibernated-chain copy of session-initiate s2", jingleCopyOf(undeliverable, "s2"))
	for _, st := range c.held {
		if jingleCopyOf(undeliverable, "s1")(st) {
			t.Errorf("session-initiate to offline bob was copied to undeliverable@: %s", st.Raw)
		}
	}

	if errs := p.LogErrors(); len(errs) > 0 {
		t.Errorf("Prosody logged errors:\n%s", strings.Join(errs, "\n"))
	}

	// A restart keeps accounts and ends every stream.
	restartEndsStream(ctx, t, p, alice)
	select {
	case _, ok := <-c.in:
		for ok {
			_, ok = <-c.in
		}
		if err := <-c.err; err != nil && !errors.Is(err, xmppclient.ErrStreamClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("component stream ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the component stream survived the restart")
	}
	alice = login("alice", false)
	c = dialComponent(t, p.Info())
	c.expect(t, "the XEP-0356 grant after the restart", func(st xmppclient.Stanza) bool {
		return strings.Contains(st.Raw, "urn:xmpp:privilege:2")
	})
	if errs := p.LogErrors(); len(errs) > 0 {
		t.Errorf("Prosody logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
