package component

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/version"

	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/sessions"
)

type workKind uint8

const (
	workCall workKind = iota
	workPresence
	workCommand
	workPublish
)

// work is one stanza handed from the read loop to a worker.
type work struct {
	kind     workKind
	st       *stream_ // where replies go
	call     jingle.CallEvent
	presence jingle.Presence
	iq       jingle.IQ
	arrived  time.Time // read off the stream: a call's ring time counts from here
}

// dispatch handles one top-level stanza in the read loop: it answers what
// needs no Redis at once and queues the rest. It never blocks.
func (c *Component) dispatch(ctx context.Context, st *stream_, raw []byte) {
	switch jingle.Classify(raw) {
	case jingle.KindCall:
		c.m.stanzas.call.Inc()
		c.handleCall(st, raw)
	case jingle.KindPresence:
		c.m.stanzas.presence.Inc()
		c.handlePresence(st, raw)
	case jingle.KindIQ:
		c.m.stanzas.iq.Inc()
		c.handleIQ(st, raw)
	case jingle.KindPrivilege:
		c.m.stanzas.other.Inc()
		c.handlePrivilege(raw)
	default:
		c.m.stanzas.ignored.Inc()
	}
}

func (c *Component) handleCall(st *stream_, raw []byte) {
	ev, err := jingle.ParseCall(raw)
	if err != nil {
		reason := "malformed"
		if errors.Is(err, jingle.ErrNotCall) {
			reason = "not_call"
		}
		c.drop(reason, err, raw)
		return
	}
	// Only the user's server may tell us about its users' calls: a copy from
	// anyone else could make us ring a phone.
	if !c.isServer(ev.Wrapper.From) {
		c.drop("untrusted_forwarder", nil, raw)
		return
	}
	if ev.Wrapper.To.Domainpart() != c.domain.Domainpart() {
		c.drop("misaddressed", nil, raw)
		return
	}
	c.enqueue(c.callAccount(ev).String(), work{kind: workCall, st: st, call: ev}, nil)
}

// callAccount is the account whose queue a call event goes to, so that one
// account's events keep their order: the callee, named in from by the
// signals from the callee's side and in to by the others. A carbon's are
// the copied message's addresses, so it goes where the original goes.
func (c *Component) callAccount(ev jingle.CallEvent) jid.JID {
	switch ev.Action {
	case jingle.ActionProceed, jingle.ActionAccept, jingle.ActionReject, jingle.ActionRinging,
		jingle.ActionInviteAccept, jingle.ActionInviteReject, jingle.ActionInviteLeft:
		return ev.From.Bare()
	case jingle.ActionFinish:
		if !c.served[ev.To.Domainpart()] {
			return ev.From.Bare()
		}
	}
	return ev.To.Bare()
}

// handlePrivilege logs the server's XEP-0356 grants. From anyone else such a
// message grants nothing: it is dropped, and not logged in full.
func (c *Component) handlePrivilege(raw []byte) {
	p, err := jingle.ParsePrivilege(raw)
	if err != nil {
		c.drop("malformed", err, raw)
		return
	}
	if !c.isServer(p.From) {
		c.drop("untrusted_privilege", fmt.Errorf("component: privileges advertised by %s", p.From), nil)
		return
	}
	c.log.Info("server granted privileges (XEP-0356)", "server", p.From, "namespace", p.Namespace, "perms", p.Perms)
}

func (c *Component) handlePresence(st *stream_, raw []byte) {
	p, err := jingle.ParsePresence(raw)
	if err != nil {
		c.drop("malformed", err, raw)
		return
	}
	if !c.served[p.From.Domainpart()] || p.From.Localpart() == "" {
		c.drop("foreign_domain", nil, raw)
		return
	}
	c.enqueue(p.From.Bare().String(), work{kind: workPresence, st: st, presence: p}, nil)
}

func (c *Component) handleIQ(st *stream_, raw []byte) {
	iq, err := jingle.ParseIQ(raw)
	if err != nil {
		c.drop("malformed", err, raw)
		if iq.ID != "" && (iq.Type == stanza.GetIQ || iq.Type == stanza.SetIQ) {
			c.replyErrorNow(st, iq.IQ, errBadRequest("the request could not be parsed"))
		}
		return
	}
	switch iq.Type {
	case stanza.GetIQ, stanza.SetIQ:
	default:
		// An answer to one of our roster reads, or to nothing we sent (an
		// error about one of our replies).
		if c.cfg.Rosters != nil {
			c.cfg.Rosters.deliver(iq.ID, raw)
		}
		return
	}
	if iq.Type == stanza.SetIQ && iq.PayloadName.Space == jingle.NSRoster && c.cfg.Rosters != nil {
		c.rosterPush(st, iq, raw)
		return
	}
	c.m.iqs.WithLabelValues(iq.Payload.String()).Inc()
	switch iq.Payload {
	case jingle.PayloadPing:
		c.replyNow(st, iq.Result(nil)) // XEP-0199: the pong is an empty result
	case jingle.PayloadDiscoInfo:
		c.discoInfo(st, iq)
	case jingle.PayloadDiscoItems:
		c.discoItems(st, iq)
	case jingle.PayloadVersion:
		c.replyNow(st, iq.Result(version.Query{Name: "jinglepush", Version: c.cfg.Version}.TokenReader()))
	case jingle.PayloadCommand:
		if iq.Type != stanza.SetIQ {
			c.replyErrorNow(st, iq.IQ, errBadRequest("commands are executed with IQ set"))
			return
		}
		c.enqueue(iq.From.Bare().String(), work{kind: workCommand, st: st, iq: iq}, &iq)
	case jingle.PayloadPublish:
		if iq.Type != stanza.SetIQ {
			c.replyErrorNow(st, iq.IQ, errBadRequest("publish is an IQ set"))
			return
		}
		// The account's queue: a publish and the copy of its propose are
		// then handled in the order they came.
		key := sessions.NodeAccount(iq.Publish.Node)
		if key == "" {
			key = iq.Publish.Node
		}
		c.enqueue(key, work{kind: workPublish, st: st, iq: iq}, &iq)
	default:
		c.replyErrorNow(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
}

// rosterPush applies a roster push for one of the served users (XEP-0356
// servers may send them to a component granted roster access) and answers
// it.
func (c *Component) rosterPush(st *stream_, iq jingle.IQ, raw []byte) {
	ro, err := jingle.ParseRoster(raw)
	if err != nil || !c.served[ro.Account.Domainpart()] {
		c.replyErrorNow(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.Forbidden})
		return
	}
	c.cfg.Rosters.push(ro)
	c.replyNow(st, iq.Result(nil))
}

// isServer reports whether j is the bare domain of a served domain.
func (c *Component) isServer(j jid.JID) bool {
	return j.Localpart() == "" && j.Resourcepart() == "" && c.served[j.Domainpart()]
}

// enqueue hands w to the worker of key without waiting. A full queue drops
// the stanza, and answers an IQ with a wait error so the server may retry
// (ejabberd keeps a push registration only on wait errors).
func (c *Component) enqueue(key string, w work, iq *jingle.IQ) {
	q := c.queues[c.shard(key)]
	w.arrived = time.Now()
	c.unfinished.Add(1) // before the worker can take it and count it done
	select {
	case q <- w:
	default:
		c.unfinished.Add(-1)
		c.drop("queue_full", nil, nil)
		if c.limited.first("queue_full") {
			c.log.Warn("a work queue is full: stanzas are dropped (IQs answered wait); Redis or APNs may be slow",
				"queue_size", c.cfg.QueueSize, "note", "logged once a minute")
		}
		if iq != nil {
			c.replyErrorNow(w.st, iq.IQ, stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint,
				Text: map[string]string{"": "jinglepush is busy, try again"}})
		}
	}
}

func (c *Component) shard(key string) int {
	return int(maphash.String(c.seed, key) % uint64(len(c.queues)))
}

func (c *Component) queueLength() float64 {
	n := 0
	for _, q := range c.queues {
		n += len(q)
	}
	return float64(n)
}

func (c *Component) drop(reason string, err error, raw []byte) {
	c.m.dropped.WithLabelValues(reason).Inc()
	// Checked first: redacting and copying the stanza costs more than the
	// counter, for a line that is usually off.
	if (err != nil || raw != nil) && c.log.Enabled(context.Background(), slog.LevelDebug) {
		// Redacted before the cut, which could leave half a secret.
		c.log.Debug("stanza dropped", "reason", reason, "error", err, "xml", truncate(jingle.Redact(raw), 512))
	}
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// work runs one queue until it is closed.
func (c *Component) work(q <-chan work) {
	defer c.workers.Done()
	for w := range q {
		if c.drain.Err() != nil {
			// Stopping, and out of time: count what is left.
			c.m.dropped.WithLabelValues("shutdown").Inc()
			c.dropped.Add(1)
			c.unfinished.Add(-1)
			continue
		}
		ctx, cancel := context.WithTimeout(sessions.WithArrival(c.drain, w.arrived), 10*time.Second)
		c.handle(ctx, w)
		c.unfinished.Add(-1)
		cancel()
	}
}

func (c *Component) handle(ctx context.Context, w work) {
	switch w.kind {
	case workCall:
		if err := c.backend.Call(ctx, w.call); err != nil {
			if errors.Is(err, sessions.ErrForeignDomain) {
				c.drop("foreign_domain", nil, nil)
				return
			}
			c.m.dropped.WithLabelValues("backend_error").Inc()
			c.log.Error("call event failed", "error", err, "action", w.call.Action, "call_id", w.call.ID)
		}
	case workPresence:
		if err := c.backend.Presence(ctx, w.presence); err != nil {
			c.log.Warn("presence not recorded", "error", err, "from", w.presence.From)
		}
	case workCommand:
		c.command(ctx, w.st, w.iq)
	case workPublish:
		c.publish(ctx, w.st, w.iq)
	}
}
