package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// send writes raw XML on the component stream.
func (c *rawComponent) send(t *testing.T, raw string) {
	t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, raw); err != nil {
		t.Fatal(err)
	}
}

// drain moves whatever has arrived into held, without waiting.
func (c *rawComponent) drain() {
	for {
		select {
		case st, ok := <-c.in:
			if !ok {
				return
			}
			c.held = append(c.held, st)
		default:
			return
		}
	}
}

// count returns how many held stanzas match.
func (c *rawComponent) count(match func(xmppclient.Stanza) bool) int {
	c.drain()
	n := 0
	for _, st := range c.held {
		if match(st) {
			n++
		}
	}
	return n
}

// checkFilledIn checks that the operator file at path, as the test server
// runs it, names the component and has no placeholder left; it returns the
// file.
func checkFilledIn(t *testing.T, path, component string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "example.com") || strings.Contains(s, "change-me") || !strings.Contains(s, component) {
		t.Errorf("%s still has placeholders:\n%s", path, s)
	}
	return s
}

// loginPhone logs user in as resource "phone", with XEP-0198 if sm, and
// closes the stream at cleanup.
func loginPhone(ctx context.Context, t *testing.T, info testenv.ServerInfo, user string, sm bool) *xmppclient.Client {
	t.Helper()
	cl, err := xmppclient.Dial(ctx, xmppclient.Config{
		Addr: info.C2SAddr, JID: info.JID(user), Password: info.Password, Resource: "phone",
		SM: sm, Presence: true, Trace: testenv.LogWriter(t, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// publishFor matches a XEP-0357 publish for node from the server.
func publishFor(server, node string) func(xmppclient.Stanza) bool {
	return func(st xmppclient.Stanza) bool {
		return st.Name.Local == "iq" && st.Type() == "set" && st.From() == server &&
			strings.Contains(st.Raw, "<publish node='"+node+"'>")
	}
}

// presenceOf matches a top-level presence of type typ from full JID from.
func presenceOf(from, typ string) func(xmppclient.Stanza) bool {
	return func(st xmppclient.Stanza) bool {
		return st.Name.Local == "presence" && st.From() == from && st.Type() == typ
	}
}

// TestEjabberdDeployFiles runs ejabberd with deploy/ejabberd/jinglepush.yml
// and checks, from a raw component connection, everything jinglepush relies
// on and everything the guide says: the copies mod_service_log forwards (one
// per propose to an offline user, two to a hibernated one, a replay with
// <delay/> from offline storage), the publishes mod_push sends, directed
// presence, and the registrations ejabberd deletes after an error answer or
// while the component is down.
func TestEjabberdDeployFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{
		Users: []string{"alice", "bob", "carol"}, Secret: `s3cr'e"t`, ResumeTimeout: 2 * time.Second,
	})
	comp, host := e.ComponentDomain, e.Domain

	s := checkFilledIn(t, filepath.Join(e.Dir, "conf", "jinglepush.yml"), comp)
	t.Logf("ejabberd %s; mod_push notify_on set: %v", e.Version, strings.Contains(s, "notify_on: all"))
	if errs := e.LogErrors(); len(errs) > 0 {
		t.Errorf("ejabberd logged errors while starting:\n%s", strings.Join(errs, "\n"))
	}

	c := dialComponent(t, e.Info()) // the handshake proves the quoted secret
	login := func(user string, sm bool) *xmppclient.Client { return loginPhone(ctx, t, e.Info(), user, sm) }
	// What the app does after every connect: enable XEP-0357, send directed
	// presence to the component.
	appConnect := func(cl *xmppclient.Client, node string) {
		if err := cl.EnablePush(ctx, comp, node, map[string]string{"secret": "s-" + node}); err != nil {
			t.Fatal(err)
		}
		if err := cl.SendPresence(comp); err != nil {
			t.Fatal(err)
		}
		c.expect(t, "directed presence of "+cl.JID(), presenceOf(cl.JID(), ""))
	}
	answer := func(st xmppclient.Stanza, errorCondition string) {
		if errorCondition == "" {
			c.send(t, fmt.Sprintf("<iq type='result' id='%s' to='%s' from='%s'/>", st.ID(), st.From(), comp))
			return
		}
		c.send(t, fmt.Sprintf("<iq type='error' id='%s' to='%s' from='%s'><error type='cancel'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
			st.ID(), st.From(), comp, errorCondition))
	}

	alice := login("alice", false)
	bob := login("bob", false)
	bobJID := bob.JID()
	appConnect(bob, "bobnode")
	// The server generates unavailable for a directed presence when the
	// stream ends (privileged presence on ejabberd would not).
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "bob's unavailable presence", presenceOf(bobJID, "unavailable"))

	// bob offline: one copy (alice's send hook), then a publish from the
	// offline hook with an empty notification and the app's secret.
	if err := alice.Send(propose(e.JID("bob"), "call1")); err != nil {
		t.Fatal(err)
	}
	var cp callCopy
	c.expect(t, "the copy of call1", copyOf(comp, "call1", &cp))
	if cp.From != host || cp.Forwarded.Message.From != alice.JID() || cp.Forwarded.Message.To != e.JID("bob") || cp.Forwarded.Message.Delay != nil {
		t.Errorf("copy %+v", cp)
	}
	pub := c.expect(t, "the publish for call1", publishFor(host, "bobnode"))
	if !strings.Contains(pub.Raw, "<notification xmlns='urn:xmpp:push:0'/>") || !strings.Contains(pub.Raw, "<value>s-bobnode</value>") {
		t.Errorf("publish for a propose: %s", pub.Raw)
	}
	answer(pub, "")
	if n := c.count(copyOf(comp, "call1", &cp)); n != 0 {
		t.Errorf("%d more copies of call1 to offline bob", n)
	}

	// bob logs in: offline storage replays call1 with <delay/>, and his
	// receive hook copies it.
	bob = login("bob", true)
	c.expect(t, "the replayed copy of call1", copyOf(comp, "call1", &cp))
	if cp.Forwarded.Message.Delay == nil {
		t.Errorf("the replayed copy has no <delay/>: %+v", cp)
	}
	appConnect(bob, "bobnode")

	// bob's phone is suspended: hibernated. It acknowledged everything
	// first, so ejabberd does not publish for the hibernation itself (it
	// would for stanzas left unacknowledged). A propose gives two copies
	// (alice's send hook, bob's receive hook) and a publish.
	if err := bob.Ack(); err != nil {
		t.Fatal(err)
	}
	mark := e.LogOffset()
	if err := bob.Drop(); err != nil {
		t.Fatal(err)
	}
	e.WaitForLog(t, mark, testenv.EjabberdHibernationLog, 10*time.Second)
	if err := alice.Send(propose(e.JID("bob"), "call2")); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "the first copy of call2", copyOf(comp, "call2", &cp))
	c.expect(t, "the second copy of call2", copyOf(comp, "call2", &cp))
	answer(c.expect(t, "the publish for call2", publishFor(host, "bobnode")), "")
	// The result kept the registration: the next stanza publishes again.
	// An error answer (other than wait) makes ejabberd delete it.
	mark = e.LogOffset()
	if err := alice.Send(propose(e.JID("bob"), "call3")); err != nil {
		t.Fatal(err)
	}
	answer(c.expect(t, "the publish for call3", publishFor(host, "bobnode")), "item-not-found")
	e.WaitForLog(t, mark, "(bobnode), disabling push", 10*time.Second)
	// One publish per propose, none for the hibernation: bob had
	// acknowledged everything.
	if n := c.count(publishFor(host, "bobnode")); n != 0 {
		t.Errorf("%d more publishes for bobnode", n)
	}
	// The hibernation times out: the directed presence ends.
	c.expect(t, "bob's unavailable presence after the resumption timeout", presenceOf(bobJID, "unavailable"))

	// The component is down: ejabberd treats push.localhost as a remote
	// domain, gets an error and deletes carol's registration.
	carol := login("carol", false)
	appConnect(carol, "carolnode")
	if err := carol.Close(); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "carol's unavailable presence", presenceOf(carol.JID(), "unavailable"))
	_ = c.conn.Close()
	mark = e.LogOffset()
	if _, err := alice.SendMessage(e.JID("carol"), "hello carol"); err != nil {
		t.Fatal(err)
	}
	t.Log(e.WaitForLog(t, mark, "(carolnode), disabling push", 30*time.Second))

	if errs := e.LogErrors(); len(errs) > 0 {
		t.Errorf("ejabberd logged errors:\n%s", strings.Join(errs, "\n"))
	}

	// A restart keeps the accounts and ends every stream.
	restartEndsStream(ctx, t, e, alice)
	login("alice", false)
	dialComponent(t, e.Info())
}

// restartEndsStream restarts srv and checks that c's stream ended with it:
// with a system-shutdown stream error, or a bare EOF when the server exits
// before flushing that.
func restartEndsStream(ctx context.Context, t *testing.T, srv testenv.XMPPServer, c *xmppclient.Client) {
	t.Helper()
	srv.Restart(t)
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatalf("%s's stream survived the restart", c.JID())
	}
	var se *xmppclient.StreamError
	if err := c.Err(); !errors.Is(err, io.ErrUnexpectedEOF) && !(errors.As(err, &se) && se.Condition == "system-shutdown") {
		t.Errorf("%s's stream ended with %v", c.JID(), err)
	}
}
