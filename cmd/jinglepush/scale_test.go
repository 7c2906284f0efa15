package main

// Several jinglepush processes, and Redis Cluster and Sentinel under them
// (issue 15): processes that share a server's stanzas or wait as a hot
// standby, accounts whose names would break a naive hash tag, and the
// Redis master failing over while calls ring.

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/pushnotify"
)

// noCallLimits turns off the limits on how often one caller may call one
// callee: the tests below call the same user many times a minute.
const noCallLimits = "caller_callee_per_minute = 0\ncaller_per_minute = 0"

// family sums the samples of metric name whose labels hold every one of
// labels (`action="propose"`), over the running processes of s.
func (s *stack) family(name string, labels ...string) float64 {
	s.t.Helper()
	var sum float64
	for _, p := range s.processes() {
		sum += p.familyOf(name, labels...)
	}
	return sum
}

// familyOf is family for one process.
func (s *stack) familyOf(name string, labels ...string) float64 {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		sp := strings.LastIndexByte(rest, ' ')
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest[:sp], l)
		}
		if v, err := strconv.ParseFloat(rest[sp+1:], 64); err == nil && match {
			sum += v
		}
	}
	return sum
}

// waitFamily waits until family(name, labels...) reaches want.
func (s *stack) waitFamily(want float64, name string, labels ...string) {
	s.t.Helper()
	testenv.Eventually(s.t, waitShort, func() bool { return s.family(name, labels...) >= want }, "%s%v >= %v", name, labels, want)
}

// pushesOf sorts pushes by call id and kind: "voip", "alert:missed"...
func pushesOf(t *testing.T, got []testenv.Request) map[string]map[string]int {
	t.Helper()
	out := make(map[string]map[string]int)
	for _, r := range got {
		b := body(t, r)
		kind := r.Header.Get("apns-push-type")
		if b.Event != "" {
			kind += ":" + b.Event
		}
		if out[b.Call.ID] == nil {
			out[b.Call.ID] = make(map[string]int)
		}
		out[b.Call.ID][kind]++
	}
	return out
}

// TestTwoProcessesShareEjabberd: ejabberd spreads a component's stanzas
// over all the connections of that component, picking one at random for
// each stanza, so two processes connected as the same component share the
// work, and the two copies of a propose (from the caller's session and
// the callee's) often reach different processes. Each call still rings
// the phone once, and its missed-call alert goes out once, whether the
// caller ends it or the ring timeout does (the timers of both processes
// poll every bucket; the claim hands each due timer to one). On the
// Redis Cluster.
func TestTwoProcessesShareEjabberd(t *testing.T) {
	srv := newServers(t, "ejabberd", onCluster)
	s := newStack(t, srv, stackOptions{ringTimeout: 3 * time.Second, callsTOML: noCallLimits})
	peer := s.newPeer(false)
	bob, alice, ac, d := s.hibernatedCallee()

	const proposeLabel = `action="propose"`
	proposes := func(p *stack) float64 { return p.familyOf("jinglepush_calls_events_total", proposeLabel) }
	var ids []string
	split := 0
	// Calls the caller ends, until the copies of one reached both
	// processes (each copy goes either way: twelve calls all kept
	// together would be one run in 2^12).
	for i := 0; i < 12 && (split == 0 || i < 3); i++ {
		id := uuid.NewString()
		ids = append(ids, id)
		a0, b0 := proposes(s), proposes(peer)
		send(t, ac, propose(bob, id))
		s.waitFamily(float64(2*len(ids)), "jinglepush_calls_events_total", proposeLabel) // both copies handled
		if proposes(s) > a0 && proposes(peer) > b0 {
			split++
		}
		s.apns.Wait(t, 2*len(ids)-1, waitShort)
		send(t, ac, jmi("retract", bob, id))
		s.apns.Wait(t, 2*len(ids), waitShort)
	}
	if split == 0 {
		t.Fatalf("in %d calls, the copies of no call reached both processes", len(ids))
	}
	// One call left to ring out.
	last := uuid.NewString()
	send(t, ac, propose(bob, last))
	s.waitFamily(float64(2*len(ids)+2), "jinglepush_calls_events_total", proposeLabel)
	s.waitFamily(1, "jinglepush_calls_events_total", `action="timeout"`, `outcome="missed"`)
	got := s.pushes(2*len(ids) + 2)

	byCall := pushesOf(t, got)
	for _, id := range append(ids, last) {
		if k := byCall[id]; len(k) != 2 || k["voip"] != 1 || k["alert:missed"] != 1 {
			t.Errorf("call %s: pushes %v, want one voip and one missed-call alert", id, k)
		}
	}
	for _, r := range got {
		if tok := r.Token; tok != d.voip && tok != d.token {
			t.Errorf("push to %s", tok)
		}
	}
	if b := body(t, got[len(got)-1]); b.Event != "missed" || b.Call.Caller != alice {
		t.Errorf("last push %s", got[len(got)-1].Body)
	}
	for _, p := range []*stack{s, peer} {
		if n := p.metric(`jinglepush_component_stanzas_total{kind="call"}`); n == 0 {
			t.Errorf("%s handled no call stanza", p.http)
		}
		if n := p.metric(`jinglepush_component_connections_total{result="connected"}`); n != 1 {
			t.Errorf("%s connected %v times", p.http, n)
		}
	}
	t.Logf("%d calls, the copies of %d of them split between the processes; ring timeout fired by %v and %v",
		len(ids)+1, split,
		s.metric(`jinglepush_calls_events_total{action="timeout",outcome="missed"}`),
		peer.metric(`jinglepush_calls_events_total{action="timeout",outcome="missed"}`))
}

// TestHotStandbyOnProsody: Prosody takes one connection per component, so
// a second process is turned away and keeps retrying (xmpp.reconnect_min
// and _max). Killed mid-call, the active process's connection drops, the
// standby's next attempt gets in, and the call it never saw begin still
// ends with its missed-call alert, from its timers. The time from the kill
// to the standby being ready is logged: the takeover an operator gets is
// about xmpp.reconnect_max at most (500ms here).
func TestHotStandbyOnProsody(t *testing.T) {
	srv := newServers(t, "prosody", onSingle)
	s := newStack(t, srv, stackOptions{process: true, ringTimeout: 6 * time.Second})
	standby := s.newPeer(true)
	bob, alice, ac, d := s.hibernatedCallee()
	id := uuid.NewString()
	send(t, ac, propose(bob, id))
	if r := s.apns.Wait(t, 1, waitShort)[0]; r.Token != d.voip || body(t, r).Call.ID != id {
		t.Fatalf("push %s to %s", r.Body, r.Token)
	}
	// Killed once the push is recorded as delivered (see the restart
	// scenario of TestCallLifecycle).
	s.waitMetric(`jinglepush_calls_wakes_settled_total{outcome="delivered"}`, 1)
	if n := standby.metric(`jinglepush_component_connections_total{result="connected"}`); n != 0 {
		t.Fatalf("the standby connected %v times while the active process ran", n)
	}

	killed := time.Now()
	s.kill()
	standby.waitReady()
	took := time.Since(killed)
	t.Logf("standby ready %v after the active process was killed (turned away %v times before)",
		took.Round(time.Millisecond), standby.metric(`jinglepush_component_connections_total{result="standby"}`))

	got := s.apns.Wait(t, 2, waitShort)
	checkAlert(t, got[1], d.token, id, "missed", "Missed call from "+alice)
	standby.waitMetric(`jinglepush_calls_events_total{action="timeout",outcome="missed"}`, 1)
	s.pushes(2)

	// The standby now serves new calls.
	id2 := uuid.NewString()
	send(t, ac, propose(bob, id2))
	if r := s.pushes(3)[2]; r.Token != d.voip || body(t, r).Call.UUID != pushnotify.CallUUID(alice, id2) {
		t.Errorf("push after the takeover: %s", r.Body)
	}
}
