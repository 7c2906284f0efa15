package sessions

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// What the operator's commands read (jinglepush devices, jinglepush trace).
// Everything here only reads; the lines it parses are written by the
// scripts (trace() in lua/prelude.lua) and by Pushed.

// TraceEvent is one line of a call's trace.
type TraceEvent struct {
	At    time.Time `json:"at"`
	Event string    `json:"event"` // created, seen, refused, push, takeover, ringing, ended
	Text  string    `json:"text"`  // the rest of the line, as recorded
}

// TraceWake is a device's wake mark on a call.
type TraceWake struct {
	Device string `json:"device"`
	Kind   string `json:"kind"`  // voip | alert
	State  string `json:"state"` // pending | delivered | given up
}

// CallTrace is what Redis holds of one call: its record while the call
// lives (ring time plus grace), its trace for calls.trace_ttl.
type CallTrace struct {
	Account string `json:"account"`
	Caller  string `json:"caller"`
	ID      string `json:"id"`
	// State is the call's state; "" once its record expired, or when no
	// call was created (a stale copy).
	State    string       `json:"state,omitempty"`
	Reason   string       `json:"reason,omitempty"` // why it was refused
	From     string       `json:"from,omitempty"`
	Media    []string     `json:"media,omitempty"`
	Created  time.Time    `json:"created,omitzero"`
	Deadline time.Time    `json:"deadline,omitzero"`
	Ended    time.Time    `json:"ended,omitzero"`
	Pushed   time.Time    `json:"first_push_delivered,omitzero"`
	Rang     time.Time    `json:"ringing,omitzero"` // the first <ringing/> after a push
	Wakes    []TraceWake  `json:"wakes,omitempty"`
	Events   []TraceEvent `json:"events"`
}

// Trace reads one call: its record and its trace, in one round trip. A
// call Redis knows nothing of has neither (State "" and no Events).
func (s *Store) Trace(ctx context.Context, account, caller, id string) (CallTrace, error) {
	ref := callRef(caller, id)
	var rec *redis.MapStringStringCmd
	var lines *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGetAll(ctx, s.keys.call(account, ref))
		lines = p.LRange(ctx, s.keys.trace(account, ref), 0, -1)
		return nil
	})
	if err != nil {
		return CallTrace{}, fmt.Errorf("sessions: trace: %w", err)
	}
	t := CallTrace{Account: account, Caller: caller, ID: id, Events: []TraceEvent{}}
	h := rec.Val()
	t.State, t.Reason, t.From = h["state"], h["reason"], h["from"]
	t.Media = splitMedia(h["media"])
	t.Created, t.Deadline, t.Ended = unixMS(h["created"]), unixMS(h["deadline"]), unixMS(h["ended"])
	t.Pushed, t.Rang = unixMS(h["pushed"]), unixMS(h["rang"])
	for f, v := range h {
		dev, ok := strings.CutPrefix(f, "w:")
		if !ok {
			continue
		}
		kind, state, _ := strings.Cut(v, ":")
		state, _, _ = strings.Cut(state, ":")
		t.Wakes = append(t.Wakes, TraceWake{Device: dev, Kind: kind, State: map[string]string{"p": "pending", "d": "delivered", "x": "given up"}[state]})
	}
	sort.Slice(t.Wakes, func(i, j int) bool { return t.Wakes[i].Device < t.Wakes[j].Device })
	for _, l := range lines.Val() {
		t.Events = append(t.Events, parseTraceLine(l))
	}
	return t, nil
}

// parseTraceLine reads "<unix ms> <event> <text>".
func parseTraceLine(l string) TraceEvent {
	at, rest, _ := strings.Cut(l, " ")
	ev, text, _ := strings.Cut(rest, " ")
	return TraceEvent{At: unixMS(at), Event: ev, Text: text}
}

func unixMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// RecentCalls lists the account's newest calls, newest first (up to 20,
// for calls.trace_ttl): those that rang (the account's recent calls) and
// those that never did (stale copies), ordered by their traces' first
// events.
func (s *Store) RecentCalls(ctx context.Context, account string) ([]CallKey, error) {
	var rang, stale *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rang = p.LRange(ctx, s.keys.recentCalls(account), 0, recentKept-1)
		stale = p.LRange(ctx, s.keys.traceCalls(account), 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: recent calls: %w", err)
	}
	var refs []string
	for _, ref := range append(rang.Val(), stale.Val()...) {
		if !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	first := make([]*redis.StringCmd, len(refs))
	if len(refs) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, ref := range refs {
				first[i] = p.LIndex(ctx, s.keys.trace(account, ref), 0)
			}
			return nil
		}); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("sessions: recent calls: %w", err)
		}
	}
	type recent struct {
		key CallKey
		at  time.Time
	}
	var out []recent
	for i, ref := range refs {
		if caller, id, ok := splitRef(ref); ok {
			out = append(out, recent{CallKey{Account: account, Caller: caller, ID: id}, parseTraceLine(first[i].Val()).At})
		}
	}
	slices.SortStableFunc(out, func(a, b recent) int { return b.at.Compare(a.at) })
	keys := make([]CallKey, 0, min(len(out), recentKept))
	for _, r := range out[:min(len(out), recentKept)] {
		keys = append(keys, r.key)
	}
	return keys, nil
}

// Presence returns when each of the account's available resources last
// said so; a resource that is not there is unavailable, or unknown.
func (s *Store) Presence(ctx context.Context, account string) (map[string]time.Time, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.presence(account)).Result()
	if err != nil {
		return nil, fmt.Errorf("sessions: presence: %w", err)
	}
	out := make(map[string]time.Time, len(m))
	for res, at := range m {
		out[res] = unixMS(at)
	}
	return out, nil
}

// Explain says in words what a trace line records: each copy of the
// propose and what it decided for each device, each push attempt, the end.
func (e TraceEvent) Explain() string {
	f := strings.Fields(e.Text)
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch e.Event {
	case "created":
		return "call created: " + e.Text
	case "seen":
		return explainSeen(arg(0), f[min(1, len(f)):])
	case "refused":
		return "refused by a limit (" + arg(0) + "): nothing rings"
	case "push":
		switch {
		case arg(0) == "not": // "push not queued <dev>: …"
			return e.Text
		case arg(2) == "dry_run":
			return fmt.Sprintf("%s push to %s: logged, not sent (apns.dry_run)", arg(1), arg(0))
		}
		return fmt.Sprintf("%s push to %s: %s (%s)", arg(1), arg(0), arg(2), strings.Join(f[min(3, len(f)):], " "))
	case "takeover":
		return fmt.Sprintf("wake of %s taken over: the process that held it did not deliver it", arg(0))
	case "ringing":
		return "the device rings: <ringing/> " + e.Text
	case "ended":
		return fmt.Sprintf("ended %s by %s, %s", arg(0), arg(1), strings.Replace(arg(2), "woken=", "devices woken: ", 1))
	}
	return e.Text
}

// explainSeen reads "seen <source> <device>=<decision>...".
func explainSeen(source string, rest []string) string {
	what := map[string]string{
		"deliver":       "copy delivered to the component",
		"undeliverable": "copy to undeliverable@ (the server could not deliver it live)",
		"publish":       "XEP-0357 publish",
	}[source]
	if what == "" {
		what = source
	}
	if len(rest) == 0 {
		return what
	}
	switch r := strings.Join(rest, " "); {
	case r == "no devices":
		return what + ": the account has no devices"
	case r == "late":
		return what + ": after the ring deadline, ignored"
	case strings.HasPrefix(r, "ended="):
		return what + ": the call had ended (" + strings.TrimPrefix(r, "ended=") + "), ignored"
	case strings.HasPrefix(r, "stale delay="):
		return what + ": stale (delayed " + strings.TrimPrefix(r, "stale delay=") + " ms, more than calls.stale_after): never rings"
	}
	var parts []string
	for _, d := range rest {
		dev, decision, _ := strings.Cut(d, "=")
		parts = append(parts, dev+" "+explainDecision(decision))
	}
	return what + ": " + strings.Join(parts, "; ")
}

func explainDecision(d string) string {
	kind, why, found := strings.Cut(d, ":")
	if !found {
		switch d {
		case "woken":
			return "not woken again: already woken for this call"
		case "wake_off":
			return "not woken: calls.wake_on_publish is off (the publish still belongs to the call)"
		case "claimed": // written before wake_off and woken were told apart
			return "not woken by it: the publish belongs to the call"
		case "live":
			return "not woken: its resource is available (live)"
		case "no_token":
			return "not woken: it has no token"
		}
		return d
	}
	reason := map[WakeReason]string{
		WhyPresence:      "its resource is not available",
		WhyUndeliverable: "the server could not deliver the call live",
		WhyPublish:       "a XEP-0357 publish came with the call",
		WhyFailOpen:      "pushed from memory while Redis was away",
		WhyAgain:         "handed out again: the first answer was lost",
	}[WakeReason(why)]
	if reason == "" {
		reason = why
	}
	return "woken (" + kind + "): " + reason
}
