package testenv_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// callScenario checks, from a raw component connection to a home server,
// that every copy of a call jinglepush needs arrives when the caller, alice,
// is on another server (remote.test): her propose and retract to a callee
// who is offline, online or hibernated, and the callee's answer from
// another device (proceed, reject, finish with migrated; to her full and
// her bare JID; with carbons on and off) that leaves by s2s. The home
// server is expected to make the copies deploy/prosody/jinglepush.pfw
// makes: one to the component for every XEP-0353 message a local user
// receives or sends to another server (but not a local caller's propose),
// and one more to undeliverable@<component> for a propose the server could
// not deliver live. Group chat and headline proposes are never copied.
type callScenario struct {
	t      *testing.T
	ctx    context.Context
	home   testenv.XMPPServer
	remote *testenv.Prosody
	c      *rawComponent
	prefix string // of capture file names: "prosody-fw", "ejabberd-mod"
	nsync  int

	comp, undeliverable string
}

func runCallScenario(t *testing.T, home testenv.XMPPServer, remote *testenv.Prosody, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := &callScenario{
		t: t, ctx: ctx, home: home, remote: remote, prefix: prefix,
		comp:          home.Info().ComponentDomain,
		undeliverable: "undeliverable@" + home.Info().ComponentDomain,
	}
	s.c = dialComponent(t, home.Info())
	alice := login(ctx, t, remote.Info(), "alice", "phone", false)
	t.Run("offline", func(t *testing.T) { s.offline(t, alice) })
	t.Run("online", func(t *testing.T) { s.online(t, alice) })
	t.Run("hibernated", func(t *testing.T) { s.hibernated(t, alice) })
	for _, carbons := range []bool{false, true} {
		t.Run(fmt.Sprintf("answered-elsewhere/carbons=%v", carbons), func(t *testing.T) { s.answeredElsewhere(t, alice, carbons) })
	}
	t.Run("groupchat-headline", func(t *testing.T) { s.groupchat(t, alice) })
	t.Run("jingle-iq", func(t *testing.T) { s.jingleIQ(t, alice) })
	checkNoErrors(t, home, remote)
}

// sync sends a XEP-0353 <ringing/> from cl to the JID to and waits for its
// copy: everything cl sent to that JID before has then been copied (a
// server handles one sender's stanzas to one recipient in order).
func (s *callScenario) sync(t *testing.T, cl *xmppclient.Client, to string) {
	t.Helper()
	s.nsync++
	id := fmt.Sprintf("sync%d", s.nsync)
	if err := cl.Send(jmi(to, "ringing", id, "")); err != nil {
		t.Fatal(err)
	}
	s.c.expect(t, "the copy of sync ringing "+id, anyCopyOf(id))
}

// login logs user in on the home server and waits until the server counts
// the session as available (its directed presence has reached the
// component), so that a message to the bare JID goes to it.
func (s *callScenario) login(t *testing.T, user, resource string, sm bool) *xmppclient.Client {
	t.Helper()
	cl := login(s.ctx, t, s.home.Info(), user, resource, sm)
	if err := cl.SendPresence(s.comp); err != nil {
		t.Fatal(err)
	}
	s.c.expect(t, "the presence of "+cl.JID(), presenceOf(cl.JID(), ""))
	return cl
}

func (s *callScenario) send(t *testing.T, cl *xmppclient.Client, raw string) {
	t.Helper()
	if err := cl.Send(raw); err != nil {
		t.Fatal(err)
	}
}

// expectCopy waits for the copy to the JID to of action id, checks the inner
// message's addresses, and captures it as name (when name is not empty).
func (s *callScenario) expectCopy(t *testing.T, to, action, id, innerFrom, innerTo, name string) jmiCopy {
	t.Helper()
	var got jmiCopy
	st := s.c.expect(t, fmt.Sprintf("the copy of %s %s to %s", action, id, to), jmiCopyOf(to, action, id, &got))
	if got.From != s.home.Info().Domain || got.Forwarded.Message.From != innerFrom || got.Forwarded.Message.To != innerTo {
		t.Errorf("copy of %s %s: wrapper from %q, inner from %q to %q; want from %q, inner from %q to %q\n%s",
			action, id, got.From, got.Forwarded.Message.From, got.Forwarded.Message.To, s.home.Info().Domain, innerFrom, innerTo, st.Raw)
	}
	if name != "" {
		capture(t, s.prefix+"-"+name+".xml", st)
	}
	return got
}

// noMore fails if any further copy of id, to any address, has arrived.
func (s *callScenario) noMore(t *testing.T, id string) {
	t.Helper()
	if n := s.c.count(anyCopyOf(id)); n != 0 {
		var raws []string
		for _, st := range s.c.held {
			if anyCopyOf(id)(st) {
				raws = append(raws, st.Raw)
			}
		}
		t.Errorf("%d unexpected copies of %s:\n%s", n, id, strings.Join(raws, "\n"))
	}
}

// hibernate drops cl's connection and waits until the server keeps its
// XEP-0198 session hibernating.
func (s *callScenario) hibernate(t *testing.T, cl *xmppclient.Client) {
	t.Helper()
	if err := cl.Ack(); err != nil {
		t.Fatal(err)
	}
	mark := s.home.LogOffset()
	if err := cl.Drop(); err != nil {
		t.Fatal(err)
	}
	s.home.WaitForLog(t, mark, hibernationLog(s.home), 10*time.Second)
}

func hibernationLog(srv testenv.XMPPServer) string {
	if srv.Info().Software == "ejabberd" {
		return testenv.EjabberdHibernationLog
	}
	return testenv.ProsodyHibernationLog
}

// offline: carol has never logged in.
func (s *callScenario) offline(t *testing.T, alice *xmppclient.Client) {
	carol := s.home.Info().JID("carol")
	s.send(t, alice, jmi(carol, "propose", "off1", audio))
	s.expectCopy(t, s.comp, "propose", "off1", alice.JID(), carol, "s2s-offline-propose")
	s.expectCopy(t, s.undeliverable, "propose", "off1", alice.JID(), carol, "s2s-offline-propose-undeliverable")
	s.send(t, alice, jmi(carol, "retract", "off1", ""))
	s.expectCopy(t, s.comp, "retract", "off1", alice.JID(), carol, "s2s-offline-retract")
	s.sync(t, alice, carol)
	s.noMore(t, "off1")
}

// online: bob's phone is connected.
func (s *callScenario) online(t *testing.T, alice *xmppclient.Client) {
	phone := s.login(t, "bob", "phone", true)
	bob := s.home.Info().JID("bob")
	s.send(t, alice, jmi(bob, "propose", "on1", audio))
	s.expectCopy(t, s.comp, "propose", "on1", alice.JID(), bob, "s2s-online-propose")
	s.send(t, alice, jmi(bob, "retract", "on1", ""))
	s.expectCopy(t, s.comp, "retract", "on1", alice.JID(), bob, "s2s-online-retract")
	s.sync(t, alice, bob)
	s.noMore(t, "on1")
	if _, err := phone.WaitFor(s.ctx, func(st xmppclient.Stanza) bool { return strings.Contains(st.Raw, "id='on1'") }); err != nil {
		t.Errorf("bob's phone did not get the propose: %v", err)
	}
	if err := phone.Close(); err != nil {
		t.Fatal(err)
	}
}

// hibernated: bob's phone lost its connection; its session waits.
func (s *callScenario) hibernated(t *testing.T, alice *xmppclient.Client) {
	phone := s.login(t, "bob", "phone", true)
	s.hibernate(t, phone)
	bob := s.home.Info().JID("bob")
	s.send(t, alice, jmi(bob, "propose", "hib1", audio))
	s.expectCopy(t, s.comp, "propose", "hib1", alice.JID(), bob, "s2s-hibernated-propose")
	s.expectCopy(t, s.undeliverable, "propose", "hib1", alice.JID(), bob, "s2s-hibernated-propose-undeliverable")
	s.send(t, alice, jmi(bob, "retract", "hib1", ""))
	s.expectCopy(t, s.comp, "retract", "hib1", alice.JID(), bob, "s2s-hibernated-retract")
	s.sync(t, alice, bob)
	s.noMore(t, "hib1")
}

// answeredElsewhere: bob has his phone and a laptop; the laptop answers or
// declines alice's calls. Its messages to alice leave by s2s.
func (s *callScenario) answeredElsewhere(t *testing.T, alice *xmppclient.Client, carbons bool) {
	info := s.home.Info()
	bob := info.JID("bob")
	phone := s.login(t, "bob", "phone", true)
	laptop := s.login(t, "bob", "laptop", false)
	if carbons {
		enableCarbons(s.ctx, t, phone)
		enableCarbons(s.ctx, t, laptop)
	}
	tag := "carbons"
	if !carbons {
		tag = "nocarbons"
	}
	capt := func(name string) string {
		if carbons {
			return "" // the same bytes as without carbons: capture once
		}
		return name
	}

	// Answered: proceed to alice's full JID (XEP-0353 0.8), then the call is
	// moved to a new one (finish with migrated) both ways.
	id := "ans-" + tag
	s.send(t, alice, jmi(bob, "propose", id, audio))
	s.expectCopy(t, s.comp, "propose", id, alice.JID(), bob, "")
	s.send(t, laptop, jmi(alice.JID(), "proceed", id, ""))
	s.expectCopy(t, s.comp, "proceed", id, laptop.JID(), alice.JID(), capt("s2s-proceed-full"))
	migrated := "<reason xmlns='urn:xmpp:jingle:1'><success/></reason><migrated to='" + id + "-2'/>"
	s.send(t, laptop, jmi(alice.JID(), "finish", id, migrated))
	fin := s.expectCopy(t, s.comp, "finish", id, laptop.JID(), alice.JID(), capt("s2s-finish-migrated"))
	if a, _ := fin.action(); a.Migrated == nil || a.Migrated.To != id+"-2" {
		t.Errorf("finish copy lost <migrated/>: %+v", a)
	}
	s.send(t, alice, jmi(laptop.JID(), "finish", id, migrated))
	s.expectCopy(t, s.comp, "finish", id, alice.JID(), laptop.JID(), capt("s2s-finish-migrated-to-callee"))
	s.sync(t, laptop, alice.JID())
	s.sync(t, alice, laptop.JID())
	s.noMore(t, id)

	// Answered with proceed to alice's bare JID (XEP-0353 before 0.8).
	id = "ansbare-" + tag
	s.send(t, alice, jmi(bob, "propose", id, audio))
	s.expectCopy(t, s.comp, "propose", id, alice.JID(), bob, "")
	s.send(t, laptop, jmi(s.remote.JID("alice"), "proceed", id, ""))
	s.expectCopy(t, s.comp, "proceed", id, laptop.JID(), s.remote.JID("alice"), capt("s2s-proceed-bare"))
	s.sync(t, laptop, s.remote.JID("alice"))
	s.noMore(t, id)

	// Declined, to the full and to the bare JID.
	for _, to := range []string{alice.JID(), s.remote.JID("alice")} {
		id = "rej-" + tag + "-" + strings.ReplaceAll(to, "/", "-")
		s.send(t, alice, jmi(bob, "propose", id, audio))
		s.expectCopy(t, s.comp, "propose", id, alice.JID(), bob, "")
		s.send(t, laptop, jmi(to, "reject", id, "<reason xmlns='urn:xmpp:jingle:1'><busy/></reason>"))
		name := "s2s-reject-full"
		if !strings.Contains(to, "/") {
			name = "s2s-reject-bare"
		}
		s.expectCopy(t, s.comp, "reject", id, laptop.JID(), to, capt(name))
		s.sync(t, laptop, to)
		s.noMore(t, id)
	}

	// The phone is suspended (hibernated) when the call comes; the laptop
	// answers. The carbon of the proceed queued for the phone is no copy.
	s.hibernate(t, phone)
	id = "anshib-" + tag
	s.send(t, alice, jmi(bob, "propose", id, audio))
	s.expectCopy(t, s.comp, "propose", id, alice.JID(), bob, "")
	s.expectCopy(t, s.undeliverable, "propose", id, alice.JID(), bob, "")
	s.send(t, laptop, jmi(alice.JID(), "proceed", id, ""))
	s.expectCopy(t, s.comp, "proceed", id, laptop.JID(), alice.JID(), "")
	s.sync(t, laptop, alice.JID())
	s.noMore(t, id)

	// A local caller's own propose to a user of another server is not
	// copied: jinglepush rings local users only.
	s.send(t, laptop, jmi(alice.JID(), "propose", "out-"+tag, audio))
	s.sync(t, laptop, alice.JID())
	s.noMore(t, "out-"+tag)
	if err := laptop.Close(); err != nil {
		t.Fatal(err)
	}
}

// groupchat: proposes of type groupchat and headline, to an offline and to
// a hibernated user, are never copied.
func (s *callScenario) groupchat(t *testing.T, alice *xmppclient.Client) {
	info := s.home.Info()
	phone := s.login(t, "bob", "phone", true)
	s.hibernate(t, phone)
	for _, to := range []string{info.JID("carol"), info.JID("bob")} {
		for _, typ := range []string{"groupchat", "headline"} {
			id := typ + "-" + strings.Split(to, "@")[0]
			s.send(t, alice, strings.Replace(jmi(to, "propose", id, audio), "type='chat'", "type='"+typ+"'", 1))
		}
		s.sync(t, alice, to)
		for _, typ := range []string{"groupchat", "headline"} {
			s.noMore(t, typ+"-"+strings.Split(to, "@")[0])
		}
	}
}

// jingleIQ: the callee's XEP-0166 session-accept from another device to a
// remote caller is copied; a local user's session-initiate to a remote one
// is not.
func (s *callScenario) jingleIQ(t *testing.T, alice *xmppclient.Client) {
	laptop := s.login(t, "bob", "laptop", false)
	s.send(t, laptop, jingleIQ(alice.JID(), "session-accept", "ja1"))
	st := s.c.expect(t, "the copy of session-accept ja1", jingleCopy(s.comp, "session-accept", "ja1"))
	capture(t, s.prefix+"-s2s-session-accept.xml", st)
	s.send(t, laptop, jingleIQ(alice.JID(), "session-initiate", "ji1"))
	s.sync(t, laptop, alice.JID())
	if n := s.c.count(jingleCopy("", "session-initiate", "ji1")); n != 0 {
		t.Errorf("%d copies of a local user's session-initiate to another server", n)
	}
}

func jingleIQ(to, action, sid string) string {
	return "<iq type='set' id='" + sid + "' to='" + to + "'><jingle xmlns='urn:xmpp:jingle:1' action='" + action + "' sid='" + sid + "'>" +
		"<content creator='initiator' name='voice'>" + audio + "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle></iq>"
}

// jingleCopy matches a forwarded Jingle IQ with action and sid sent to the
// JID to (any address if to is empty).
func jingleCopy(to, action, sid string) func(xmppclient.Stanza) bool {
	return func(st xmppclient.Stanza) bool {
		var c struct {
			Forwarded struct {
				IQ struct {
					Jingle *struct {
						Action string `xml:"action,attr"`
						SID    string `xml:"sid,attr"`
					} `xml:"urn:xmpp:jingle:1 jingle"`
				} `xml:"jabber:client iq"`
			} `xml:"urn:xmpp:forward:0 forwarded"`
		}
		if st.Name.Local != "message" || (to != "" && st.To() != to) || st.Unmarshal(&c) != nil {
			return false
		}
		j := c.Forwarded.IQ.Jingle
		return j != nil && j.SID == sid && j.Action == action
	}
}

// TestProsodyFederatedCalls runs the call scenario on a home Prosody with
// the operator files of deploy/prosody, the caller on a second Prosody.
func TestProsodyFederatedCalls(t *testing.T) {
	fed := testenv.NewFederation(t)
	remote := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: remoteDomain, Addr: remoteAddr, Users: []string{"alice"}, Federation: fed, WithoutJinglepush: true})
	home := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: "prosody.test", Users: []string{"bob", "carol"}, Federation: fed})
	runCallScenario(t, home, remote, "prosody-fw")
}

// TestProsodyComponentDownKeepsS2S: while jinglepush is not connected, the
// firewall's copies of call messages from a caller on another server must
// not bounce: mod_component would write its error onto the s2s stream,
// where the other server takes it for a forged stanza and closes the
// stream. mod_jinglepush_nobounce drops them; once jinglepush connects,
// copies flow again.
func TestProsodyComponentDownKeepsS2S(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fed := testenv.NewFederation(t)
	remote := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: remoteDomain, Addr: remoteAddr, Users: []string{"alice"}, Federation: fed, WithoutJinglepush: true})
	home := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: "prosody.test", Users: []string{"bob"}, Federation: fed})
	alice := login(ctx, t, remote.Info(), "alice", "phone", false)
	bob := login(ctx, t, home.Info(), "bob", "phone", false)
	exchange(ctx, t, alice, bob)

	mark := home.LogOffset()
	if err := alice.Send(jmi(bob.JID(), "propose", "down1", audio)); err != nil {
		t.Fatal(err)
	}
	if err := bob.Send(jmi(alice.JID(), "proceed", "down1", "")); err != nil {
		t.Fatal(err)
	}
	exchange(ctx, t, alice, bob)
	home.WaitForLog(t, mark, "jinglepush is not connected: dropping a copy for "+home.ComponentDomain, 5*time.Second)
	for _, s := range []testenv.XMPPServer{home, remote} {
		for _, bad := range []string{"claiming to be from", "not-authorized", "Component not connected"} {
			if strings.Contains(s.Log(), bad) {
				t.Errorf("%s logged %q:\n%s", s.Info().Domain, bad, s.Log())
			}
		}
	}
	for _, st := range bob.Queued() {
		if st.Type() == "error" {
			t.Errorf("bob's client got an error: %s", st.Raw)
		}
	}

	c := dialComponent(t, home.Info())
	if err := alice.Send(jmi(bob.JID(), "propose", "up1", audio)); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "the copy of propose up1", jmiCopyOf(home.ComponentDomain, "propose", "up1", nil))
	checkNoErrors(t, home, remote)
}

// TestEjabberdFederatedCalls runs the call scenario on a home ejabberd with
// mod_jinglepush (deploy/ejabberd/mod_jinglepush, installed with
// ejabberdctl module_install), the caller on a Prosody: the same copies as
// Prosody's rules.
func TestEjabberdFederatedCalls(t *testing.T) {
	fed := testenv.NewFederation(t)
	remote := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: remoteDomain, Addr: remoteAddr, Users: []string{"alice"}, Federation: fed, WithoutJinglepush: true})
	home := testenv.StartEjabberd(t, testenv.EjabberdOptions{
		Domain: "ejabberd.test", Users: []string{"bob", "carol"}, Federation: fed, JinglepushModule: true, ResumeTimeout: time.Minute,
	})
	runCallScenario(t, home, remote, "ejabberd-mod")
}

// TestEjabberdFederatedServiceLog measures what stock ejabberd (the
// operator file's mod_service_log) gives jinglepush when the caller is on
// another server: nothing at all for a propose to an offline user (only the
// XEP-0357 publish, which does not say "call"), one copy for a hibernated
// one (the callee session's receive hook), and the callee's answer from
// another device (its send hook).
func TestEjabberdFederatedServiceLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fed := testenv.NewFederation(t)
	remote := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: remoteDomain, Addr: remoteAddr, Users: []string{"alice"}, Federation: fed, WithoutJinglepush: true})
	home := testenv.StartEjabberd(t, testenv.EjabberdOptions{Domain: "ejabberd.test", Users: []string{"bob", "carol"}, Federation: fed, ResumeTimeout: time.Minute})
	s := &callScenario{t: t, ctx: ctx, home: home, remote: remote, comp: home.ComponentDomain}
	comp := s.comp
	s.c = dialComponent(t, home.Info())
	c := s.c
	alice := login(ctx, t, remote.Info(), "alice", "phone", false)
	result := func(st xmppclient.Stanza) {
		c.send(t, fmt.Sprintf("<iq type='result' id='%s' to='%s' from='%s'/>", st.ID(), st.From(), comp))
	}

	// carol enables push and goes offline; alice calls her.
	carol := s.login(t, "carol", "phone", false)
	if err := carol.EnablePush(ctx, comp, "carolnode", map[string]string{"secret": "s"}); err != nil {
		t.Fatal(err)
	}
	if err := carol.Close(); err != nil {
		t.Fatal(err)
	}
	s.send(t, alice, jmi(home.JID("carol"), "propose", "off1", audio))
	pub := c.expect(t, "the publish for carol's offline propose", publishFor(home.Domain, "carolnode"))
	capture(t, "ejabberd-servicelog-s2s-offline-publish.xml", pub)
	result(pub)
	if n := c.count(anyCopyOf("off1")); n != 0 {
		t.Errorf("stock ejabberd made %d copies of a remote caller's propose to an offline user", n)
	} else {
		t.Logf("remote caller -> offline callee: no copy, only %s", pub.Raw)
	}

	// bob's phone is hibernated: his session's receive hook copies it.
	s.hibernate(t, s.login(t, "bob", "phone", true))
	s.send(t, alice, jmi(home.JID("bob"), "propose", "hib1", audio))
	st := c.expect(t, "the copy of hib1", jmiCopyOf(comp, "propose", "hib1", nil))
	capture(t, "ejabberd-servicelog-s2s-hibernated-propose.xml", st)

	// bob answers on his laptop: the send hook copies the proceed.
	laptop := s.login(t, "bob", "laptop", false)
	s.send(t, laptop, jmi(alice.JID(), "proceed", "hib1", ""))
	st = c.expect(t, "the copy of bob's proceed", jmiCopyOf(comp, "proceed", "hib1", nil))
	capture(t, "ejabberd-servicelog-s2s-proceed-full.xml", st)
}

// TestEjabberdModuleLocalCalls: with mod_jinglepush, calls between two users
// of the same ejabberd give the same copies as on Prosody (one per call
// stanza, plus undeliverable@ for a propose to an offline or hibernated
// callee), and nothing else reaches jinglepush: no chat message, no
// presence, no IQ.
func TestEjabberdModuleLocalCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{Users: []string{"alice", "bob"}, JinglepushModule: true, ResumeTimeout: 2 * time.Second})
	s := &callScenario{t: t, ctx: ctx, home: e, comp: e.ComponentDomain, undeliverable: "undeliverable@" + e.ComponentDomain, prefix: "ejabberd-mod"}
	checkFilledIn(t, filepath.Join(e.Dir, "conf", "mod_jinglepush.yml"), e.ComponentDomain)
	if jp := checkFilledIn(t, filepath.Join(e.Dir, "conf", "jinglepush.yml"), e.ComponentDomain); strings.Contains(jp, "mod_service_log:") {
		t.Errorf("jinglepush.yml still loads mod_service_log next to mod_jinglepush:\n%s", jp)
	}
	s.c = dialComponent(t, e.Info())
	alice := s.login(t, "alice", "phone", false)
	bob := e.JID("bob")

	// bob offline.
	s.send(t, alice, jmi(bob, "propose", "l-off", audio))
	s.expectCopy(t, s.comp, "propose", "l-off", alice.JID(), bob, "local-offline-propose")
	s.expectCopy(t, s.undeliverable, "propose", "l-off", alice.JID(), bob, "local-offline-propose-undeliverable")
	s.sync(t, alice, bob)
	s.noMore(t, "l-off")

	// bob logs in: offline storage hands him the propose, with <delay/>;
	// that is delivery too, so it is copied (jinglepush drops it as stale).
	phone := s.login(t, "bob", "phone", true)
	var replay jmiCopy
	st := s.c.expect(t, "the copy of the replayed propose", jmiCopyOf(s.comp, "propose", "l-off", &replay))
	capture(t, "ejabberd-mod-local-offline-replay.xml", st)
	if !strings.Contains(st.Raw, "urn:xmpp:delay") {
		t.Errorf("the replayed copy has no <delay/>: %s", st.Raw)
	}

	// bob online: one copy, where mod_service_log made two.
	s.send(t, alice, jmi(bob, "propose", "l-on", audio))
	s.expectCopy(t, s.comp, "propose", "l-on", alice.JID(), bob, "local-online-propose")
	s.sync(t, alice, bob)
	s.noMore(t, "l-on")

	// Nothing but calls: a chat message, a presence, an IQ to bob.
	if _, err := alice.SendMessage(bob, "not a call"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send("<presence to='" + bob + "'/>"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send("<iq type='get' id='v1' to='" + phone.JID() + "'><query xmlns='jabber:iq:version'/></iq>"); err != nil {
		t.Fatal(err)
	}
	s.sync(t, alice, bob)
	s.c.drain()
	for _, st := range s.c.held {
		if st.Name.Local == "message" && strings.Contains(st.Raw, "urn:xmpp:forward:0") {
			if _, ok := func() (jmiAct, bool) { var c jmiCopy; _ = st.Unmarshal(&c); return c.action() }(); !ok {
				t.Errorf("a copy of something that is not a call: %s", st.Raw)
			}
		}
	}

	// bob's phone is suspended: the copy and undeliverable@. When the
	// session times out (resend_on_timeout: if_offline) ejabberd moves the
	// queued propose to offline storage, and it is marked undeliverable
	// again, with its old <delay/> (as on Prosody; jinglepush drops it).
	s.hibernate(t, phone)
	s.send(t, alice, jmi(bob, "propose", "l-hib", audio))
	s.expectCopy(t, s.comp, "propose", "l-hib", alice.JID(), bob, "local-hibernated-propose")
	s.expectCopy(t, s.undeliverable, "propose", "l-hib", alice.JID(), bob, "local-hibernated-propose-undeliverable")
	st = s.c.expect(t, "the copy to undeliverable@ after the resumption timeout", jmiCopyOf(s.undeliverable, "propose", "l-hib", nil))
	capture(t, "ejabberd-mod-local-hibtimeout-propose-again.xml", st)
	checkNoErrors(t, e)
}
