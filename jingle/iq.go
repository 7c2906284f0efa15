package jingle

import (
	"encoding/xml"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"
)

// IQ is a top-level IQ with its header and what its payload is.
type IQ struct {
	// The header exactly as received: ID, To, From, Type, Lang. Build the
	// answer with .Result(payload) or .Error(e): mellium swaps to and from
	// itself.
	stanza.IQ
	Payload     IQPayload // which payload it carries
	PayloadName xml.Name  // the first child's name (for logs), empty when none
	Node        string    // the disco#info/#items query's node, or the command's node
	Command     *Command  // when Payload == PayloadCommand
	Publish     *Publish  // when Payload == PayloadPublish
}

// IQPayload is the kind of payload an IQ carries, judged by its first child.
// It does not depend on the IQ's type: check Type too (a disco#info result
// is PayloadDiscoInfo as well).
type IQPayload int

// IQ payloads.
const (
	PayloadNone       IQPayload = iota // no child (typically an empty result)
	PayloadOther                       // anything not listed below
	PayloadPing                        // XEP-0199 <ping/>
	PayloadDiscoInfo                   // XEP-0030 disco#info <query/>
	PayloadDiscoItems                  // XEP-0030 disco#items <query/>
	PayloadVersion                     // XEP-0092 <query xmlns='jabber:iq:version'/>
	PayloadCommand                     // XEP-0050 <command/>
	PayloadPublish                     // XEP-0357 notification: <pubsub><publish><item><notification xmlns='urn:xmpp:push:0'>
)

func (p IQPayload) String() string {
	switch p {
	case PayloadNone:
		return "none"
	case PayloadOther:
		return "other"
	case PayloadPing:
		return "ping"
	case PayloadDiscoInfo:
		return "disco#info"
	case PayloadDiscoItems:
		return "disco#items"
	case PayloadVersion:
		return "version"
	case PayloadCommand:
		return "command"
	case PayloadPublish:
		return "publish"
	}
	return "IQPayload(" + strconv.Itoa(int(p)) + ")"
}

// Command is a XEP-0050 <command/>.
type Command struct {
	Node      string
	Action    string // "execute" (also when absent), "complete", "cancel", "next", "prev"
	SessionID string
	Status    string // only in responses: "executing", "completed", "canceled"
	Form      Form   // the first jabber:x:data form (zero when absent)
}

// Publish is a XEP-0357 notification publish:
//
//	<pubsub><publish node=…><item><notification xmlns='urn:xmpp:push:0'>
//	  [<x type='form'> summary </x> | tigase <encrypted/>]
//	</notification></item></publish>[<publish-options><x type='submit'>…</x></publish-options>]</pubsub>
type Publish struct {
	Node      string
	Options   Form    // publish-options (the app put its `secret` here)
	Summary   Summary // from the urn:xmpp:push:summary form, zero values when absent or empty
	Encrypted bool    // a tigase:push:encrypt:0 <encrypted/> element was present
	VoIP      bool    // ... and it had type='voip' (Prosody 13 mod_cloud_notify_encrypted marks proposes so)
}

// Secret returns the publish-options field `secret`, which the app copied
// from its registration into its XEP-0357 enable (empty when absent).
func (p Publish) Secret() string { return p.Options.Get("secret") }

// Summary is the urn:xmpp:push:summary form of a publish. Neither server
// sends anything in it that tells a call from a message.
type Summary struct {
	MessageCount         int
	Sender               string // last-message-sender (may be empty)
	Body                 string // last-message-body (may be empty; Prosody sends "New Message!" as a dummy, ejabberd "New message")
	PendingSubscriptions int
}

// ParseIQ parses any top-level <iq>.
//
// A get or set must carry exactly one child; id, a valid type, from and to
// are required. Anything broken is ErrMalformed; if the header could be read,
// the returned IQ still holds it (and PayloadName) so that the caller can
// answer bad-request, while Payload, Node, Command and Publish are cleared.
//
// The content of a publish is read leniently (an unreadable message-count
// is 0): ejabberd drops a device's push registration when a publish is
// answered with an error.
func ParseIQ(raw []byte) (IQ, error) {
	var s scanner
	var root, child tag
	if err := s.open(raw, &root, "iq"); err != nil {
		return IQ{}, err
	}
	iq, headerErr := iqHeader(&root)
	n := 0
	for s.next(&child) {
		if n++; n > 1 {
			s.skip()
			continue
		}
		iq.PayloadName = child.name
		iq.payload(&s, &child)
	}
	err := s.finish()
	if err == nil {
		err = headerErr
	}
	if err == nil && (iq.Type == stanza.GetIQ || iq.Type == stanza.SetIQ) && n != 1 {
		err = malformed("iq %s with %d payload elements", iq.Type, n)
	}
	if err != nil {
		iq.Payload, iq.Node, iq.Command, iq.Publish = PayloadNone, "", nil, nil
		return iq, err
	}
	return iq, nil
}

// iqHeader reads the IQ's attributes. It keeps going past a bad one, so
// that the others are there to address an error reply, and reports the
// first problem.
func iqHeader(root *tag) (IQ, error) {
	iq := IQ{IQ: stanza.IQ{
		XMLName: root.name,
		ID:      root.attr("id"),
		Type:    stanza.IQType(root.attr("type")),
		Lang:    root.lang(),
	}}
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	var err error
	if iq.From, err = parseJID("iq from", root.attr("from")); err != nil {
		keep(err)
	}
	if iq.To, err = parseJID("iq to", root.attr("to")); err != nil {
		keep(err)
	}
	switch iq.Type {
	case stanza.GetIQ, stanza.SetIQ, stanza.ResultIQ, stanza.ErrorIQ:
	default:
		keep(malformed("iq type %q", short(string(iq.Type))))
	}
	if iq.ID == "" {
		keep(malformed("iq without id"))
	}
	return iq, first
}

// payload reads the IQ's first child.
func (iq *IQ) payload(s *scanner, start *tag) {
	switch start.name {
	case xml.Name{Space: NSPing, Local: "ping"}:
		iq.Payload = PayloadPing
	case xml.Name{Space: NSDiscoInfo, Local: "query"}:
		iq.Payload, iq.Node = PayloadDiscoInfo, start.attr("node")
	case xml.Name{Space: NSDiscoItems, Local: "query"}:
		iq.Payload, iq.Node = PayloadDiscoItems, start.attr("node")
	case xml.Name{Space: NSVersion, Local: "query"}:
		iq.Payload = PayloadVersion
	case xml.Name{Space: NSCommands, Local: "command"}:
		if cmd, ok := command(s, start); ok {
			iq.Payload, iq.Node, iq.Command = PayloadCommand, cmd.Node, &cmd
		}
		return
	case xml.Name{Space: NSPubSub, Local: "pubsub"}:
		iq.Payload = PayloadOther
		if pub := pubsub(s); pub != nil {
			iq.Payload, iq.Publish = PayloadPublish, pub
		}
		return
	default:
		iq.Payload = PayloadOther
	}
	s.skip()
}

// command reads a XEP-0050 <command/>.
func command(s *scanner, start *tag) (Command, bool) {
	cmd := Command{
		Node:      start.attr("node"),
		Action:    start.attr("action"),
		SessionID: start.attr("sessionid"),
		Status:    start.attr("status"),
	}
	if cmd.Node == "" {
		return Command{}, s.fail(malformed("command without node"))
	}
	switch cmd.Action {
	case "":
		cmd.Action = "execute"
	case "execute", "complete", "cancel", "next", "prev":
	default:
		return Command{}, s.fail(malformed("command action %q", short(cmd.Action)))
	}
	cmd.Form = firstForm(s)
	return cmd, s.err == nil
}

// pubsub reads a <pubsub/> and returns the push notification its first
// <publish/> carries, or nil when it is some other pubsub request.
func pubsub(s *scanner) *Publish {
	var pub Publish
	publish, options, notification := false, false, false
	var child tag
	for s.next(&child) {
		switch {
		case is(child.name, NSPubSub, "publish") && !publish:
			publish = true
			pub.Node = child.attr("node")
			notification = pub.publish(s)
		case is(child.name, NSPubSub, "publish-options") && !options:
			options = true
			pub.Options = firstForm(s)
		default:
			s.skip()
		}
	}
	if !notification || s.err != nil {
		return nil
	}
	if pub.Node == "" {
		s.fail(malformed("push publish without node"))
		return nil
	}
	return &pub
}

// publish reads a <publish/>: the first notification of its items.
func (pub *Publish) publish(s *scanner) (notification bool) {
	var item, child tag
	for s.next(&item) {
		if !is(item.name, NSPubSub, "item") || notification {
			s.skip()
			continue
		}
		for s.next(&child) {
			if !is(child.name, NSPush, "notification") || notification {
				s.skip()
				continue
			}
			notification = true
			pub.notification(s)
		}
	}
	return notification
}

// notification reads the summary form and Tigase's encrypted element.
func (pub *Publish) notification(s *scanner) {
	var child tag
	for s.next(&child) {
		switch {
		case is(child.name, NSDataForm, "x"):
			if f := readForm(s, &child); f.FormType == FormTypeSummary {
				pub.Summary = summary(f)
			}
		case is(child.name, NSTigaseEncrypt, "encrypted"):
			pub.Encrypted = true
			pub.VoIP = pub.VoIP || child.attr("type") == "voip"
			s.skip()
		default:
			s.skip()
		}
	}
}

// firstForm reads the children of the current element and returns its first
// data form.
func firstForm(s *scanner) Form {
	var f Form
	seen := false
	var child tag
	for s.next(&child) {
		if seen || !is(child.name, NSDataForm, "x") {
			s.skip()
			continue
		}
		seen = true
		f = readForm(s, &child)
	}
	return f
}

func summary(f Form) Summary {
	return Summary{
		MessageCount:         lenientCount(f.Get("message-count")),
		Sender:               f.Get("last-message-sender"),
		Body:                 f.Get("last-message-body"),
		PendingSubscriptions: lenientCount(f.Get("pending-subscription-count")),
	}
}

// lenientCount reads a non-negative count; anything else is 0.
func lenientCount(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
