package jingle

import (
	"encoding/xml"

	"mellium.im/xmpp/jid"
)

// Privilege is a XEP-0356 permission advertisement, sent by the server when
// the component connects.
type Privilege struct {
	From      jid.JID // the server host that grants the permissions
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
	r := newReader(raw)
	root, err := r.root()
	if err != nil {
		return Privilege{}, err
	}
	if !isStanza(root.Name, "message", true) {
		return Privilege{}, malformed("<%s/> is not a message", root.Name.Local)
	}
	var p Privilege
	err = r.each(func(child xml.StartElement) error {
		if p.Namespace == "" && child.Name.Local == "privilege" &&
			(child.Name.Space == NSPrivilege1 || child.Name.Space == NSPrivilege2) {
			p.Namespace = child.Name.Space
			return p.perms(r)
		}
		return r.skip()
	})
	if err == nil {
		err = r.finish()
	}
	if err != nil {
		return Privilege{}, err
	}
	if p.Namespace == "" {
		return Privilege{}, malformed("no <privilege/> element")
	}
	if p.From, err = parseJID("privilege from", attr(root, "from")); err != nil {
		return Privilege{}, err
	}
	return p, nil
}

func (p *Privilege) perms(r *reader) error {
	return r.each(func(child xml.StartElement) error {
		if access := attr(child, "access"); access != "" && child.Name.Local == "perm" && child.Name.Space == p.Namespace {
			if len(p.Perms) >= maxFormFields {
				return malformed("more than %d perms", maxFormFields)
			}
			if p.Perms == nil {
				p.Perms = make(map[string]string)
			}
			p.Perms[access] = attr(child, "type")
		}
		return r.skip()
	})
}
