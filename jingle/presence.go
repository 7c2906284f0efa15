package jingle

import (
	"time"

	"mellium.im/xmpp/jid"
)

// Presence is a top-level presence: from privileged presence (XEP-0356,
// Prosody) or directed presence from the app (both servers).
type Presence struct {
	From, To jid.JID
	Type     string    // "" (available), "unavailable", "subscribe", "probe", "error", ...
	Delay    time.Time // XEP-0203 delay, UTC (Prosody's privileged snapshot on connect marks presences with it)
	ID       string
	Status   string // the first <status/>, for logs ("Disconnected: Hibernating too long")
}

// Available reports whether p says the resource is available.
func (p Presence) Available() bool { return p.Type == "" }

// ParsePresence parses a top-level <presence>. It reads only the root
// attributes and the <delay/> and <status/> children. from is required;
// everything broken is ErrMalformed.
func ParsePresence(raw []byte) (Presence, error) {
	var s scanner
	var root, child tag
	if err := s.open(raw, &root, "presence"); err != nil {
		return Presence{}, err
	}
	p := Presence{Type: root.attr("type"), ID: root.attr("id")}
	var err error
	if p.From, err = parseJID("presence from", root.attr("from")); err != nil {
		return Presence{}, err
	}
	if p.To, err = parseOptionalJID("presence to", root.attr("to")); err != nil {
		return Presence{}, err
	}
	status := false
	for s.next(&child) {
		switch {
		case isDelay(child.name):
			p.Delay = earliest(p.Delay, readDelay(&s, &child))
		case !status && child.name.Local == "status" && child.name.Space == root.name.Space:
			status = true
			p.Status = s.text()
		default:
			s.skip()
		}
	}
	if err := s.finish(); err != nil {
		return Presence{}, err
	}
	return p, nil
}
