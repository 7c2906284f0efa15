package jingle

import (
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
)

// Roster is a jabber:iq:roster answer or push (RFC 6121 section 2), which a
// XEP-0356 roster permission lets the component fetch and receive for the
// users of a served domain.
type Roster struct {
	IQ      stanza.IQ // the header as received, to answer a push with .Result(nil)
	Account jid.JID   // whose roster: the iq's from, a bare JID
	Push    bool      // a push (iq set): Items holds the one item that changed
	Ver     string    // the roster version, "" when absent
	// Items are mellium's: JID, Name, Subscription ("none", "to", "from",
	// "both"; "remove" only in a push; absent means "none") and Group.
	// Pending requests (ask, approved) are not kept.
	Items []roster.Item
}

// ParseRoster parses a top-level <iq> of type result or set carrying a
// <query xmlns='jabber:iq:roster'/>. The iq's from must be an account's bare
// JID, a push must hold exactly one item, every item needs a valid jid and a
// known subscription; anything else, and broken input, is ErrMalformed.
// Whether the sender may speak for the account is the caller's to check.
func ParseRoster(raw []byte) (Roster, error) {
	var s scanner
	var root, child tag
	if err := s.open(raw, &root, "iq"); err != nil {
		return Roster{}, err
	}
	iq, err := iqHeader(&root)
	if err != nil {
		return Roster{}, err
	}
	r := Roster{IQ: iq.IQ, Push: iq.Type == stanza.SetIQ}
	if iq.Type != stanza.ResultIQ && !r.Push {
		return Roster{}, malformed("roster in an iq of type %q", short(string(iq.Type)))
	}
	query := false
	for s.next(&child) {
		if query || !is(child.name, NSRoster, "query") {
			s.skip()
			continue
		}
		query = true
		r.Ver = child.attr("ver")
		r.items(&s)
	}
	if err := s.finish(); err != nil {
		return Roster{}, err
	}
	switch {
	case !query:
		return Roster{}, malformed("no roster query")
	case r.Push && len(r.Items) != 1:
		return Roster{}, malformed("roster push with %d items", len(r.Items))
	case iq.From.Localpart() == "" || iq.From.Resourcepart() != "":
		return Roster{}, malformed("roster from %s, not an account's bare JID", iq.From)
	}
	r.Account = iq.From
	return r, nil
}

func (r *Roster) items(s *scanner) {
	var child, group tag
	for s.next(&child) {
		if !is(child.name, NSRoster, "item") {
			s.skip()
			continue
		}
		if len(r.Items) == maxRosterItems {
			s.fail(malformed("more than %d roster items", maxRosterItems))
			return
		}
		item := roster.Item{Name: child.attr("name"), Subscription: child.attr("subscription")}
		var err error
		if item.JID, err = parseJID("roster item jid", child.attr("jid")); err != nil {
			s.fail(err)
			return
		}
		switch item.Subscription {
		case "":
			item.Subscription = "none"
		case "none", "to", "from", "both":
		case "remove":
			if !r.Push {
				s.fail(malformed("subscription remove outside a push, for %s", item.JID))
				return
			}
		default:
			s.fail(malformed("subscription %q for %s", short(item.Subscription), item.JID))
			return
		}
		for s.next(&group) {
			if !is(group.name, NSRoster, "group") {
				s.skip()
				continue
			}
			if len(item.Group) == maxFieldValues {
				s.fail(malformed("%s is in more than %d groups", item.JID, maxFieldValues))
			}
			item.Group = append(item.Group, s.text())
		}
		r.Items = append(r.Items, item)
	}
}
