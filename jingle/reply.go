package jingle

import (
	"encoding/xml"
	"slices"

	"mellium.im/xmpp/jid"
)

// The builders below return payloads for stanza.IQ.Result: build the IQ
// exactly as received and call iq.Result(payload), which swaps to and from.
// Each returned reader can be read once.

// DiscoInfo is the component's XEP-0030 disco#info answer: one identity and
// the features, sorted and deduplicated, for the node-less query.
func DiscoInfo(identityCategory, identityType, name string, features []string) xml.TokenReader {
	return DiscoInfoNode("", identityCategory, identityType, name, features)
}

// DiscoInfoNode is a disco#info answer for a node, such as an ad-hoc
// command's node ("" for the node-less query).
func DiscoInfoNode(node, identityCategory, identityType, name string, features []string) xml.TokenReader {
	var b builder
	b.start(xml.Name{Space: NSDiscoInfo, Local: "query"}, "node", node)
	b.start(xml.Name{Local: "identity"}, "category", identityCategory, "type", identityType, "name", name)
	b.end()
	sorted := slices.Compact(slices.Sorted(slices.Values(features)))
	for _, f := range sorted {
		if f != "" {
			b.start(xml.Name{Local: "feature"}, "var", f)
			b.end()
		}
	}
	b.end()
	return b.reader()
}

// Item is one XEP-0030 disco item, e.g. an ad-hoc command: JID is the
// component, Node the command's node, Name its human-readable name.
type Item struct {
	JID  jid.JID
	Node string
	Name string
}

// DiscoItems is a XEP-0030 disco#items answer for node ("" for the
// node-less query). The component's command list is
// DiscoItems(NodeCommands, Item{JID: component, Node: "register-push-apns", Name: "…"}, …).
func DiscoItems(node string, items ...Item) xml.TokenReader {
	var b builder
	b.start(xml.Name{Space: NSDiscoItems, Local: "query"}, "node", node)
	for _, it := range items {
		b.start(xml.Name{Local: "item"}, "jid", it.JID.String(), "node", it.Node, "name", it.Name)
		b.end()
	}
	b.end()
	return b.reader()
}

// Version is a XEP-0092 software version answer; os is left out when empty.
func Version(name, version, os string) xml.TokenReader {
	var b builder
	b.start(xml.Name{Space: NSVersion, Local: "query"})
	b.element("name", name)
	b.element("version", version)
	b.element("os", os)
	b.end()
	return b.reader()
}

// Pong is the payload of the answer to a XEP-0199 ping: nothing. It returns
// nil, and iq.Result(nil) is the empty result the ping wants.
func Pong() xml.TokenReader { return nil }

// CommandStatus is the status of a XEP-0050 command response.
type CommandStatus string

// Command statuses.
const (
	StatusExecuting CommandStatus = "executing"
	StatusCompleted CommandStatus = "completed"
	StatusCanceled  CommandStatus = "canceled"
)

// NoteType is the type of a XEP-0050 <note/>.
type NoteType string

// Note types.
const (
	NoteInfo  NoteType = "info"
	NoteWarn  NoteType = "warn"
	NoteError NoteType = "error"
)

// Note is a XEP-0050 <note/>; a zero Note is left out.
type Note struct {
	Type NoteType // NoteInfo when empty
	Text string
}

// CommandReply is the component's answer to one XEP-0050 request.
type CommandReply struct {
	Node      string
	SessionID string // omitted when empty
	Status    CommandStatus
	// Actions the requester may take next while the command is executing;
	// the first is the default. For StatusExecuting an empty list means
	// {"complete"}: <actions execute='complete'><complete/></actions>.
	// Ignored for the other statuses.
	Actions []string
	Note    Note
	Form    *FormSpec // nil: no form
}

// CommandResponse builds the <command/> of a XEP-0050 response.
func CommandResponse(c CommandReply) xml.TokenReader {
	var b builder
	b.start(xml.Name{Space: NSCommands, Local: "command"},
		"node", c.Node, "sessionid", c.SessionID, "status", string(c.Status))
	if c.Status == StatusExecuting {
		actions := c.Actions
		if len(actions) == 0 {
			actions = []string{"complete"}
		}
		b.start(xml.Name{Local: "actions"}, "execute", actions[0])
		for _, a := range actions {
			b.start(xml.Name{Local: a})
			b.end()
		}
		b.end()
	}
	if c.Note.Text != "" {
		typ := c.Note.Type
		if typ == "" {
			typ = NoteInfo
		}
		b.start(xml.Name{Local: "note"}, "type", string(typ))
		b.text(c.Note.Text)
		b.end()
	}
	if c.Form != nil {
		c.Form.write(&b)
	}
	b.end()
	return b.reader()
}
