package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// forEachServer runs f once per XMPP server kind, each with its own server
// and redis-server shared by f's subtests: one test body, every server.
func forEachServer(t *testing.T, f func(t *testing.T, srv *servers)) {
	t.Run("prosody", func(t *testing.T) { f(t, prosodyServers(t, testenv.ProsodyOptions{})) })
	t.Run("ejabberd", func(t *testing.T) { f(t, ejabberdServers(t, testenv.EjabberdOptions{})) })
}

// The Redis Cluster and the Sentinel setup of this test binary, shared by
// every test that runs on them (TestMain closes them). Each stack keeps to
// its own key prefix. Tests that fail over, pause or kill their nodes run
// alone (no t.Parallel) and leave them to be repaired by the next Get.
var (
	sharedCluster  = &testenv.SharedRedisCluster{Options: testenv.ClusterOptions{Masters: 3, ReplicasPerMaster: 1}}
	sharedSentinel = &testenv.SharedRedisSentinel{Options: testenv.SentinelOptions{Replicas: 1}}
)

// Kinds of Redis a scenario runs on.
const (
	onSingle   = "single"
	onCluster  = "cluster"
	onSentinel = "sentinel"
)

// lifecycleOnEveryRedis are the scenarios of TestCallLifecycle that also
// run on the cluster and on Sentinel (issue 15): each of the callee's
// states (offline in the retract, timeout and duplicate scenarios,
// hibernated), both endings, duplicates, two devices, and a restart.
var lifecycleOnEveryRedis = []string{
	"hibernated callee gets its push",
	"caller retracts: a missed-call alert, no second VoIP push",
	"ring timeout: a missed-call alert",
	"duplicate propose rings once",
	"two devices each get one push",
	"component killed and restarted mid-call: no duplicate push",
}

// forEachSetup runs f on every XMPP server with every kind of Redis: with
// a single redis-server, all of f's scenarios; with the shared cluster and
// the shared Sentinel setup, only the scenarios named in only (the others
// skip). Each server and Redis pair runs beside the others (go test's
// -parallel, 2 on 2 cores) on an XMPP server of its own: scenarios on one
// server share its component connection and run one after the other.
func forEachSetup(t *testing.T, only []string, f func(t *testing.T, srv *servers)) {
	for _, kind := range []string{onSingle, onCluster, onSentinel} {
		for _, software := range []string{"prosody", "ejabberd"} {
			name := software
			if kind != onSingle {
				name += "-" + kind
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				srv := newServers(t, software, kind)
				if kind != onSingle {
					srv.only = only
				}
				f(t, srv)
				for _, o := range srv.only {
					if !srv.ran[o] {
						t.Errorf("no scenario %q to run on the %s", o, kind)
					}
				}
			})
		}
	}
}

// newServers starts an XMPP server (prosody or ejabberd, default options)
// and takes the Redis of kind: a redis-server of its own, or the shared
// cluster or Sentinel setup.
func newServers(t *testing.T, software, kind string) *servers {
	t.Helper()
	srv := &servers{}
	switch software {
	case "prosody":
		srv.xmpp, srv.hibernated = testenv.StartProsody(t, testenv.ProsodyOptions{}), testenv.ProsodyHibernationLog
	case "ejabberd":
		srv.xmpp, srv.hibernated = testenv.StartEjabberd(t, testenv.EjabberdOptions{}), testenv.EjabberdHibernationLog
	default:
		t.Fatalf("no XMPP server %q", software)
	}
	srv.useRedis(t, kind)
	return srv
}

// useRedis gives srv the Redis of kind.
func (srv *servers) useRedis(t *testing.T, kind string) {
	t.Helper()
	srv.redis, srv.cluster, srv.sentinel = nil, nil, nil
	switch kind {
	case onSingle:
		srv.redis = testenv.StartRedis(t)
	case onCluster:
		srv.cluster = sharedCluster.Get(t)
	case onSentinel:
		srv.sentinel = sharedSentinel.Get(t)
	default:
		t.Fatalf("no Redis kind %q", kind)
	}
}

// redisKind names the kind of srv's Redis.
func (srv *servers) redisKind() string {
	switch {
	case srv.cluster != nil:
		return onCluster
	case srv.sentinel != nil:
		return onSentinel
	}
	return onSingle
}

// redisTOML is the [redis] lines that reach srv's Redis.
func (srv *servers) redisTOML() string {
	switch {
	case srv.cluster != nil:
		// Every node as a seed, as an operator would list them.
		return "addrs = " + tomlList(srv.cluster.Addrs())
	case srv.sentinel != nil:
		return fmt.Sprintf("addrs = %s\nmaster_name = %q", tomlList(srv.sentinel.SentinelAddrs()), srv.sentinel.MasterName)
	}
	return fmt.Sprintf("addrs = [%q]", srv.redis.Addr)
}

// skipUnlisted skips t when srv runs only some scenarios and t is not one
// of them.
func (srv *servers) skipUnlisted(t *testing.T) {
	if srv.only == nil {
		return
	}
	name := t.Name()[strings.LastIndexByte(t.Name(), '/')+1:]
	for _, o := range srv.only {
		if strings.ReplaceAll(o, " ", "_") == name {
			srv.mu.Lock()
			if srv.ran == nil {
				srv.ran = make(map[string]bool)
			}
			srv.ran[o] = true
			srv.mu.Unlock()
			return
		}
	}
	t.Skipf("not one of the scenarios that run on the %s", srv.redisKind())
}

// prosodyServers starts a Prosody and a redis-server for t's scenarios.
func prosodyServers(t *testing.T, opts testenv.ProsodyOptions) *servers {
	return &servers{
		xmpp:       testenv.StartProsody(t, opts),
		redis:      testenv.StartRedis(t),
		hibernated: testenv.ProsodyHibernationLog,
	}
}

// ejabberdServers starts an ejabberd and a redis-server for t's scenarios.
func ejabberdServers(t *testing.T, opts testenv.EjabberdOptions) *servers {
	return &servers{
		xmpp:       testenv.StartEjabberd(t, opts),
		redis:      testenv.StartRedis(t),
		hibernated: testenv.EjabberdHibernationLog,
	}
}

func TestFirstCall(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv *servers) {
		t.Run("offline callee gets exactly one VoIP push", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			if err := bc.Close(); err != nil {
				t.Fatal(err)
			}
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			sent := time.Now()
			send(t, ac, propose(bob, id, "audio", "video"))

			r := s.pushes(1)[0]
			h := r.Header
			if r.ProtoMajor != 2 || r.Token != d.voip || r.Path != "/3/device/"+d.voip {
				t.Errorf("request %s %s over %s", r.Method, r.Path, r.Proto)
			}
			for name, want := range map[string]string{
				"apns-push-type":   "voip",
				"apns-topic":       bundleID + ".voip",
				"apns-priority":    "10",
				"apns-collapse-id": id,
			} {
				if got := h.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			exp, _ := strconv.ParseInt(h.Get("apns-expiration"), 10, 64)
			if d := time.Unix(exp, 0).Sub(sent.Add(20 * time.Second)); d < -2*time.Second || d > 3*time.Second {
				t.Errorf("apns-expiration %d is not the ring deadline", exp)
			}
			if !strings.HasPrefix(h.Get("authorization"), "bearer ") {
				t.Errorf("no JWT: %q", h.Get("authorization"))
			}
			b := body(t, r)
			if b.Account != bob || b.Call.ID != id || b.Call.UUID != id || b.Call.From != alice+"/pc" ||
				b.Call.Caller != alice || strings.Join(b.Call.Media, ",") != "audio,video" || len(b.APS) != 0 || b.Event != "" {
				t.Errorf("body %s", r.Body)
			}
			if b.Call.ExpiresAt-b.Call.SentAt != 20000 || b.Call.SentAt < sent.Add(-time.Second).UnixMilli() || b.Call.SentAt > time.Now().UnixMilli() {
				t.Errorf("times in %s", r.Body)
			}
		})

		t.Run("online callee gets no push", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
			ac := s.login(alice, "pc", false)
			id := uuid.NewString()
			send(t, ac, propose(bob, id))
			ctx, cancel := context.WithTimeout(context.Background(), waitShort)
			defer cancel()
			if _, err := bc.WaitFor(ctx, func(st xmppclient.Stanza) bool { return strings.Contains(st.Raw, id) }); err != nil {
				t.Fatalf("bob did not get the propose live: %v", err)
			}
			s.waitMetric(`jinglepush_calls_events_total{action="propose",outcome="created"}`, 1)
			s.settle()
			if got := s.apns.Requests(); len(got) != 0 {
				t.Errorf("%d pushes to an online phone", len(got))
			}
		})

		t.Run("malformed propose is dropped and counted, the stream stays up", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{})
			bob, alice := s.user("bob"), s.user("alice")
			bc := s.login(bob, "phone", false)
			d := s.registerDevice(bc, device{id: "iphone", voip: token()})
			bc.Close()
			ac := s.login(alice, "pc", false)
			send(t, ac, "<message to='"+bob+"' id='bad1'><propose xmlns='urn:xmpp:jingle-message:0'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>")
			send(t, ac, "<message to='"+bob+"' id='bad2'><propose xmlns='urn:xmpp:jingle-message:0' id='"+strings.Repeat("x", 300)+"'/></message>")
			s.waitMetric(`jinglepush_component_dropped_total{reason="malformed"}`, 2)
			send(t, ac, propose(bob, "good-call"))
			if r := s.pushes(1)[0]; r.Token != d.voip || body(t, r).Call.ID != "good-call" {
				t.Errorf("push after the bad ones: %s", r.Body)
			}
			if n := s.metric(`jinglepush_component_connections_total{result="connected"}`); n != 1 {
				t.Errorf("%v connections: the stream went down", n)
			}
		})

		t.Run("bad registrations get the contract errors", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{extraTOML: "[registration]\nmax_devices = 2\n"})
			bob := s.user("bob")
			bc := s.login(bob, "phone", false)
			ctx, cancel := context.WithTimeout(context.Background(), waitShort)
			defer cancel()
			comp := s.info.ComponentDomain
			tests := [...]struct {
				fields           map[string]string
				typ, cond, field string
			}{
				0: {map[string]string{"voip-token": token()}, "modify", "bad-request", "device-id"},
				1: {map[string]string{"device-id": "d1", "voip-token": "abcd"}, "modify", "bad-request", "voip-token"},
				2: {map[string]string{"device-id": "d1", "token": strings.Repeat("g", 64)}, "modify", "bad-request", "token"},
				3: {map[string]string{"device-id": "d1"}, "modify", "bad-request", "token"},
				4: {map[string]string{"device-id": "d1", "voip-token": token(), "bundle-id": "com.example.unknown"}, "cancel", "item-not-found", "bundle-id"},
				5: {map[string]string{"device-id": "d1", "voip-token": token(), "environment": "staging"}, "modify", "bad-request", "environment"},
			}
			for i, tc := range tests {
				res, err := bc.Command(ctx, comp, "register-push-apns", "execute", "", tc.fields)
				var se *xmppclient.StanzaError
				if !errors.As(err, &se) || se.Type != tc.typ || se.Condition != tc.cond || !strings.Contains(se.Text, tc.field) {
					t.Errorf("%d: %v (%v)", i, err, res)
				}
			}
			// The device limit.
			for _, id := range []string{"d1", "d2"} {
				if _, err := bc.Command(ctx, comp, "register-push-apns", "execute", "", map[string]string{"device-id": id, "voip-token": token()}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := bc.Command(ctx, comp, "register-push-apns", "execute", "", map[string]string{"device-id": "d3", "voip-token": token()})
			var se *xmppclient.StanzaError
			if !errors.As(err, &se) || se.Condition != "resource-constraint" {
				t.Errorf("third device: %v", err)
			}
			// Unregistering an unknown device, then a known one.
			_, err = bc.Command(ctx, comp, "unregister-push-apns", "execute", "", map[string]string{"device-id": "nope"})
			if !errors.As(err, &se) || se.Condition != "item-not-found" {
				t.Errorf("unknown device: %v", err)
			}
			if res, err := bc.Command(ctx, comp, "unregister-push-apns", "execute", "", map[string]string{"device-id": "d1"}); err != nil || res.Status != "completed" {
				t.Errorf("unregister: %v %v", res, err)
			}
			// The two-step form of the command.
			res, err := bc.Command(ctx, comp, "register-push-apns", "execute", "", nil)
			if err != nil || res.Status != "executing" || res.FormType != "form" {
				t.Fatalf("bare execute: %v %v", res, err)
			}
			res, err = bc.Command(ctx, comp, "register-push-apns", "complete", res.SessionID, map[string]string{"device-id": "d3", "voip-token": token()})
			if err != nil || res.Status != "completed" || res.Value("node") == "" || len(res.Value("secret")) < 22 {
				t.Errorf("complete: %v %v", res, err)
			}
		})

		t.Run("users of domains not served are refused", func(t *testing.T) {
			s := newStack(t, srv, stackOptions{servedDomains: []string{"elsewhere.example"}})
			bc := s.login(s.user("bob"), "phone", false)
			ctx, cancel := context.WithTimeout(context.Background(), waitShort)
			defer cancel()
			_, err := bc.Command(ctx, s.info.ComponentDomain, "register-push-apns", "execute", "", map[string]string{"device-id": "d1", "voip-token": token()})
			var se *xmppclient.StanzaError
			if !errors.As(err, &se) || se.Condition != "forbidden" {
				t.Errorf("foreign user: %v", err)
			}
		})
	})
}
