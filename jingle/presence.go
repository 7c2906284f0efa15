package jingle

import (
	"encoding/xml"
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
	if p, ok := parsePresenceFast(raw); ok {
		return p, nil
	}
	return parsePresenceSlow(raw)
}

// parsePresenceSlow is ParsePresence with encoding/xml: it decides
// everything the fast path leaves to it, and is the reference the fast path
// is tested against.
func parsePresenceSlow(raw []byte) (Presence, error) {
	r := newReader(raw)
	root, err := r.root()
	if err != nil {
		return Presence{}, err
	}
	if !isStanza(root.Name, "presence", true) {
		return Presence{}, malformed("<%s/> is not a presence", root.Name.Local)
	}
	p, err := presenceHeader(root)
	if err != nil {
		return Presence{}, err
	}
	status := false
	err = r.each(func(child xml.StartElement) (err error) {
		switch {
		case isDelay(child):
			var t time.Time
			t, err = r.delay(child)
			p.Delay = earliest(p.Delay, t)
			return err
		case !status && isStatus(child, root):
			status = true
			p.Status, err = r.text()
			return err
		}
		return r.skip()
	})
	if err == nil {
		err = r.finish()
	}
	if err != nil {
		return Presence{}, err
	}
	return p, nil
}

// presenceHeader reads the attributes of a presence.
func presenceHeader(root xml.StartElement) (Presence, error) {
	p := Presence{Type: attr(root, "type"), ID: attr(root, "id")}
	var err error
	if p.From, err = parseJID("presence from", attr(root, "from")); err != nil {
		return Presence{}, err
	}
	if p.To, err = parseOptionalJID("presence to", attr(root, "to")); err != nil {
		return Presence{}, err
	}
	return p, nil
}

// isStatus reports whether child of the presence root is a <status/>.
func isStatus(child, root xml.StartElement) bool {
	return child.Name.Local == "status" && child.Name.Space == root.Name.Space
}
