package main

// Helpers of the federation scenarios (federation_test.go): a home server
// with jinglepush, callers on a second server, and barriers for what those
// callers send.

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// The callers' server: a Prosody without jinglepush for another domain, on
// another loopback address.
const (
	fedRemoteDomain = "remote.test"
	fedRemoteAddr   = "127.0.0.2"
)

// Metrics the federation scenarios wait on.
const (
	mTimeoutMissed   = `jinglepush_calls_events_total{action="timeout",outcome="missed"}`
	mRingingForeign  = `jinglepush_calls_events_total{action="ringing",outcome="foreign"}`
	mRingingPushed   = `jinglepush_calls_events_total{action="ringing",outcome="after_push"}`
	mPushToRinging   = `jinglepush_calls_push_to_ringing_seconds_count{bundle_id="` + bundleID + `"}`
	mWakesDelivered  = `jinglepush_calls_wakes_settled_total{outcome="delivered"}`
	mProposeCreated  = `jinglepush_calls_events_total{action="propose",outcome="created"}`
	mNotOneToOne     = `jinglepush_calls_events_total{action="propose",outcome="not_one_to_one"}`
	mPublishesEmpty  = `jinglepush_push_publishes_total{outcome="empty"}`
	mRetractCanceled = `jinglepush_calls_events_total{action="retract",outcome="cancelled"}`
)

// fedServers is a home server of the federation (with jinglepush's
// component and its redis-server) and the callers' server.
type fedServers struct {
	*servers
	remote      *testenv.Prosody
	remoteUsers *atomic.Int64 // shared by every home: one remote server
	// idle is a home user with no devices: the callee of the calls that
	// prove a ring timeout has passed (pastRingTimeout).
	idle string
}

// fedStack is a scenario's jinglepush on a home server of the federation,
// with its callers on either server.
type fedStack struct {
	*stack
	fs          *fedServers
	ringTimeout time.Duration
	remotes     []remoteClient
	syncs       int // barrier <ringing/>s sent by remote clients
}

// remoteClient is a client on the callers' server and the home user it
// calls, to whom its barrier messages go.
type remoteClient struct {
	c    *xmppclient.Client
	peer string
}

func newFedStack(t *testing.T, fs *fedServers, opts stackOptions) *fedStack {
	t.Helper()
	if opts.ringTimeout == 0 {
		opts.ringTimeout = 20 * time.Second
	}
	return &fedStack{stack: newStack(t, fs.servers, opts), fs: fs, ringTimeout: opts.ringTimeout}
}

// callee is bob with his iPhone registered (both tokens) and, if sm, XEP-0198
// on its session.
func (f *fedStack) callee(sm bool) (bob string, phone *xmppclient.Client, d device) {
	f.t.Helper()
	bob = f.user("bob")
	phone = f.login(bob, "phone", sm)
	d = f.registerDevice(phone, device{id: "iphone", voip: token(), token: token()})
	return bob, phone, d
}

// offlineCallee is bob with his iPhone registered and logged out.
func (f *fedStack) offlineCallee() (bob string, d device) {
	f.t.Helper()
	bob, phone, d := f.callee(false)
	if err := phone.Close(); err != nil {
		f.t.Fatal(err)
	}
	return bob, d
}

// remoteCaller registers a new user on the callers' server and logs it in
// as resource "phone". peer is the home user its barrier messages go to
// (settle): its callee, or an online user where the server would not copy
// a message to the callee.
func (f *fedStack) remoteCaller(name, peer string) *xmppclient.Client {
	f.t.Helper()
	r := f.fs.remote
	local := fmt.Sprintf("%s%d", name, f.fs.remoteUsers.Add(1))
	r.Register(f.t, local, r.Password)
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	cfg := xmppclient.Config{Addr: r.C2SAddr, JID: r.JID(local), Password: r.Password, Resource: "phone", Presence: true}
	if testenv.Verbose() {
		cfg.Trace = testenv.LogWriter(f.t, cfg.JID+": ")
	}
	c, err := xmppclient.Dial(ctx, cfg)
	if err != nil {
		f.t.Fatalf("login %s: %v", cfg.JID, err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	f.remotes = append(f.remotes, remoteClient{c: c, peer: peer})
	return c
}

// localCaller is a new home user logged in as resource "pc".
func (f *fedStack) localCaller(name string) *xmppclient.Client {
	f.t.Helper()
	return f.login(f.user(name), "pc", false)
}

// settle is stack.settle with a barrier for the remote clients first. Their
// pings cannot reach the component (its domain is not a member of the
// federation), so each sends a XEP-0353 <ringing/> to its home peer
// instead, and jinglepush must have counted all of them (a ringing from
// another server's user is "foreign"): the home server then copied
// everything that client sent before (it routes one sender's stanzas to one
// recipient in order).
func (f *fedStack) settle() {
	f.t.Helper()
	for _, r := range f.remotes {
		select {
		case <-r.c.Done():
			continue
		default:
		}
		f.syncs++
		send(f.t, r.c, fmt.Sprintf("<message to='%s' type='chat' id='sync%d'><ringing xmlns='urn:xmpp:jingle-message:0' id='sync-%d'/></message>", r.peer, f.syncs, f.syncs))
	}
	f.waitMetric(mRingingForeign, float64(f.syncs))
	f.stack.settle()
}

// pushes is stack.pushes with the remote barrier: it waits for n pushes,
// then until jinglepush has done all it will do with what every client
// sent, and returns all pushes so far ("exactly n").
func (f *fedStack) pushes(n int) []testenv.Request {
	f.t.Helper()
	f.apns.Wait(f.t, n, waitShort)
	f.settle()
	got := f.apns.Requests()
	if len(got) != n {
		for _, r := range got {
			f.t.Logf("push: %s %s %s", r.Header.Get("apns-push-type"), r.Token, r.Body)
		}
		f.t.Fatalf("%d pushes, want %d", len(got), n)
	}
	return got
}

// noPushes waits until jinglepush has done all it will do (settle) and
// fails if it pushed anything; what says for what.
func (f *fedStack) noPushes(what string) {
	f.t.Helper()
	f.settle()
	if got := f.apns.Requests(); len(got) != 0 {
		for _, r := range got {
			f.t.Logf("push: %s %s %s", r.Header.Get("apns-push-type"), r.Token, r.Body)
		}
		f.t.Errorf("%d pushes %s", len(got), what)
	}
}

// pastRingTimeout waits until every call proposed so far is past its ring
// timeout, as a fact rather than a sleep: from proposes one more call, to
// the idle user, and that call must end as missed at its own ring timeout
// (which comes after every earlier call's). It then checks that no other
// call ended at its ring timeout.
func (f *fedStack) pastRingTimeout(from *xmppclient.Client) {
	f.t.Helper()
	send(f.t, from, propose(f.fs.idle, uuid.NewString()))
	testenv.Eventually(f.t, f.ringTimeout+waitShort, func() bool { return f.metric(mTimeoutMissed) >= 1 }, "the control call to end at its ring timeout")
	f.settle()
	if n := f.metric(mTimeoutMissed); n != 1 {
		f.t.Errorf("%v calls ended at their ring timeout, want only the control call", n)
	}
}

// suspend acknowledges what c received and drops its connection, as iOS
// suspends an app, and waits until the server keeps its session hibernated.
// (ejabberd publishes when a session goes into hibernation with stanzas not
// acknowledged; the scenarios want only the call's publishes.)
func (f *fedStack) suspend(c *xmppclient.Client) {
	f.t.Helper()
	if err := c.Ack(); err != nil {
		f.t.Fatal(err)
	}
	f.hibernate(c)
}

// resume takes prev's hibernated session back, as the woken app does; the
// server then re-sends what it queued.
func (f *fedStack) resume(prev *xmppclient.Client) *xmppclient.Client {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	cfg := xmppclient.Config{Addr: f.info.C2SAddr, JID: prev.JID(), Password: f.info.Password, SM: true}
	if testenv.Verbose() {
		cfg.Trace = testenv.LogWriter(f.t, prev.JID()+": ")
	}
	c, err := xmppclient.Resume(ctx, cfg, prev)
	if err != nil {
		f.t.Fatalf("resume %s: %v", prev.JID(), err)
	}
	f.t.Cleanup(func() { _ = c.Drop() })
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return c
}

// enableCarbons turns XEP-0280 message carbons on for c.
func enableCarbons(t *testing.T, c *xmppclient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if _, err := c.IQ(ctx, "<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>"); err != nil {
		t.Fatalf("carbons for %s: %v", c.JID(), err)
	}
}

// waitStanza waits until c has received a message that holds the XEP-0353
// element action with id.
func waitStanza(t *testing.T, c *xmppclient.Client, action, id string) xmppclient.Stanza {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	st, err := c.WaitFor(ctx, func(st xmppclient.Stanza) bool {
		return st.Name.Local == "message" && strings.Contains(st.Raw, "<"+action+" ") && strings.Contains(st.Raw, "id='"+id+"'")
	})
	if err != nil {
		t.Fatalf("%s got no %s %s: %v", c.JID(), action, id, err)
	}
	return st
}

// jmiWith is a XEP-0353 message of type chat whose action element holds
// inner (a <reason/>, <migrated/>, <tie-break/>).
func jmiWith(action, to, id, inner string) string {
	return fmt.Sprintf("<message to='%s' type='chat' id='m-%s-%s'><%s xmlns='urn:xmpp:jingle-message:0' id='%s'>%s</%s><store xmlns='urn:xmpp:hints'/></message>",
		to, action, id, action, id, inner, action)
}

// proposeOfType is a propose in a message of type typ (groupchat, headline).
func proposeOfType(typ, to, id string) string {
	return strings.Replace(propose(to, id), "type='chat'", "type='"+typ+"'", 1)
}

// checkVoIP checks a VoIP push for call id from the full JID from.
func checkVoIP(t *testing.T, r testenv.Request, tok, id, from string) {
	t.Helper()
	h := r.Header
	if r.Token != tok || h.Get("apns-push-type") != "voip" || h.Get("apns-topic") != bundleID+".voip" || h.Get("apns-collapse-id") != id {
		t.Errorf("VoIP push: token %s, headers %v", r.Token, h)
	}
	b := body(t, r)
	caller, _, _ := strings.Cut(from, "/")
	if b.Event != "" || b.Call.ID != id || b.Call.UUID != id || b.Call.From != from || b.Call.Caller != caller {
		t.Errorf("VoIP body %s, want call %s from %s", r.Body, id, from)
	}
}

// bare is the bare JID of c.
func bare(c *xmppclient.Client) string {
	b, _, _ := strings.Cut(c.JID(), "/")
	return b
}

// checkServerErrors reports what srv logged at error level: on s2s, a
// forged or bounced stanza shows there (a stream closed as not-authorized).
func checkServerErrors(t *testing.T, srv testenv.XMPPServer) {
	t.Helper()
	if errs := srv.LogErrors(); len(errs) > 0 {
		t.Errorf("%s (%s) logged errors:\n%s", srv.Info().Software, srv.Info().Domain, strings.Join(errs, "\n"))
	}
}
