package jingle

import (
	"mellium.im/xmpp/jid"
)

// Privilege is a XEP-0356 permission advertisement, sent by the server when
// the component connects.
type Privilege struct {
	From      jid.JID // who sent it: only the server host's grants count
	Namespace string  // NSPrivilege1 (ejabberd 23.01) or NSPrivilege2
	// Perms maps each <perm/>'s access ("roster", "message", "presence",
	// "iq") to its type ("get", "managed_entity", "roster", "none", ...;
	// "" for iq, whose grants are per namespace and not kept here).
	Perms map[string]string
}

// ParsePrivilege parses a top-level <message> that Classify calls
// KindPrivilege. Everything else, and broken input, is ErrMalformed.
func ParsePrivilege(raw []byte) (Privilege, error) {
	if Classify(raw) != KindPrivilege {
		return Privilege{}, malformed("not a privilege advertisement")
	}
	var s scanner
	var root, child tag
	if err := s.open(raw, &root, "message"); err != nil {
		return Privilege{}, err
	}
	var p Privilege
	for s.next(&child) {
		if p.Namespace == "" && child.name.Local == "privilege" &&
			(child.name.Space == NSPrivilege1 || child.name.Space == NSPrivilege2) {
			p.Namespace = child.name.Space
			p.perms(&s)
		} else {
			s.skip()
		}
	}
	if err := s.finish(); err != nil {
		return Privilege{}, err
	}
	if p.Namespace == "" {
		return Privilege{}, malformed("no <privilege/> element")
	}
	var err error
	if p.From, err = parseJID("privilege from", root.attr("from")); err != nil {
		return Privilege{}, err
	}
	return p, nil
}

func (p *Privilege) perms(s *scanner) {
	var child tag
	for s.next(&child) {
		if access := child.attr("access"); access != "" && is(child.name, p.Namespace, "perm") {
			if len(p.Perms) >= maxFormFields {
				s.fail(malformed("more than %d perms", maxFormFields))
			}
			if p.Perms == nil {
				p.Perms = make(map[string]string)
			}
			p.Perms[access] = child.attr("type")
		}
		s.skip()
	}
}
