package component

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/disco/items"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/version"

	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/sessions"
)

// The registration commands (DESIGN.md section 3).
const (
	nodeRegister   = "register-push-apns"
	nodeUnregister = "unregister-push-apns"
)

// features are the component's disco#info features, sorted.
var features = []string{
	commands.NS, disco.NSInfo, disco.NSItems, version.NS, ping.NS, jingle.NSPush,
}

// discoInfo answers in the read loop.
func (c *Component) discoInfo(st *stream_, iq jingle.IQ) {
	switch iq.Node {
	case "":
		c.replyNow(st, iq.Result(discoInfo("", info.Identity{Category: "pubsub", Type: "push", Name: "jinglepush"}, features...)))
	case nodeRegister, nodeUnregister:
		c.replyNow(st, iq.Result(discoInfo(iq.Node, info.Identity{Category: "automation", Type: "command-node", Name: commandName(iq.Node)},
			commands.NS, form.NS)))
	case commands.NS:
		c.replyNow(st, iq.Result(discoInfo(iq.Node, info.Identity{Category: "automation", Type: "command-list", Name: "Commands"})))
	default:
		c.replyErrorNow(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
}

// discoInfo is a XEP-0030 disco#info answer for node ("" for the node-less
// query).
func discoInfo(node string, identity info.Identity, features ...string) xml.TokenReader {
	q := disco.Info{InfoQuery: disco.InfoQuery{Node: node}, Identity: []info.Identity{identity}}
	for _, f := range features {
		q.Features = append(q.Features, info.Feature{Var: f})
	}
	return q.TokenReader()
}

func (c *Component) discoItems(st *stream_, iq jingle.IQ) {
	switch iq.Node {
	case commands.NS:
		c.replyNow(st, iq.Result(discoItems(iq.Node,
			items.Item{JID: c.domain, Node: nodeRegister, Name: commandName(nodeRegister)},
			items.Item{JID: c.domain, Node: nodeUnregister, Name: commandName(nodeUnregister)},
		)))
	case "":
		c.replyNow(st, iq.Result(discoItems("")))
	default:
		c.replyErrorNow(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
}

// discoItems is a XEP-0030 disco#items answer for node: mellium's
// ItemsQuery is only the request, so the query element is wrapped here.
func discoItems(node string, list ...items.Item) xml.TokenReader {
	start := xml.StartElement{Name: xml.Name{Space: disco.NSItems, Local: "query"}}
	if node != "" {
		start.Attr = []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
	}
	payload := make([]xml.TokenReader, len(list))
	for i, it := range list {
		payload[i] = it.TokenReader()
	}
	return xmlstream.Wrap(xmlstream.MultiReader(payload...), start)
}

func commandName(node string) string {
	switch node {
	case nodeRegister:
		return "Register an iOS device for pushes"
	case nodeUnregister:
		return "Unregister an iOS device"
	}
	return ""
}

// registerForm is the empty form a bare execute gets back.
func registerForm() *form.Data {
	return form.New(
		form.Title("Register an iOS device for pushes"),
		form.Instructions("Give the app install's id and at least one of its tokens."),
		form.Text("device-id", form.Label("Device id (stable per app install)"), form.Required),
		form.Text("voip-token", form.Label("PushKit VoIP token (hex)")),
		form.Text("token", form.Label("APNs token for alerts (hex)")),
		form.Text("bundle-id", form.Label("App bundle id")),
		form.List("environment", form.Label("APNs environment (production or sandbox)"),
			form.ListItem("production", "production"), form.ListItem("sandbox", "sandbox")),
	)
}

func unregisterForm() *form.Data {
	return form.New(
		form.Title("Unregister an iOS device"),
		form.Text("device-id", form.Label("Device id"), form.Required),
	)
}

// Command statuses (XEP-0050).
const (
	statusExecuting = "executing"
	statusCompleted = "completed"
	statusCanceled  = "canceled"
)

// commandResponse is a XEP-0050 <command/> response carrying payload
// (actions, a note, a form): mellium has those pieces but no response
// element with content.
func commandResponse(cmd *jingle.Command, sessionID, status string, payload ...xml.TokenReader) xml.TokenReader {
	start := xml.StartElement{Name: xml.Name{Space: commands.NS, Local: "command"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: cmd.Node}}}
	if sessionID != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "sessionid"}, Value: sessionID})
	}
	start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "status"}, Value: status})
	return xmlstream.Wrap(xmlstream.MultiReader(payload...), start)
}

// command runs a registration command (in a worker: it touches Redis).
// The commands keep no state between steps: the form of a bare execute may
// be completed through any component process.
func (c *Component) command(ctx context.Context, st *stream_, iq jingle.IQ) {
	cmd := iq.Command
	if cmd.Node != nodeRegister && cmd.Node != nodeUnregister {
		c.replyError(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound,
			Text: map[string]string{"": "no command " + cmd.Node}})
		return
	}
	if iq.From.Localpart() == "" || !c.served[iq.From.Domainpart()] {
		c.replyError(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.Forbidden,
			Text: map[string]string{"": "only users of " + c.servedList() + " may register devices here"}})
		return
	}
	switch cmd.Action {
	case "cancel":
		c.reply(st, iq.Result(commandResponse(cmd, cmd.SessionID, statusCanceled)))
		return
	case "", "execute", "complete":
	default:
		c.replyError(st, iq.IQ, errBadRequest("action "+cmd.Action+" is not supported: this command has one step"))
		return
	}
	if cmd.Form.Type != "submit" {
		if cmd.Action == "complete" {
			c.replyError(st, iq.IQ, errBadRequest("complete needs the submitted form"))
			return
		}
		sessionID := cmd.SessionID
		if sessionID == "" {
			sessionID = newSessionID()
		}
		f := registerForm()
		if cmd.Node == nodeUnregister {
			f = unregisterForm()
		}
		actions := commands.Complete | commands.Complete<<3 // <actions execute='complete'><complete/></actions>
		c.reply(st, iq.Result(commandResponse(cmd, sessionID, statusExecuting, actions.TokenReader(), f.TokenReader())))
		return
	}

	submitted := cmd.Form
	deviceID := submitted.Get("device-id")
	if deviceID == "" {
		deviceID = submitted.Get("android-id")
	}
	account := iq.From.Bare().String()
	if cmd.Node == nodeUnregister {
		if err := c.backend.Unregister(ctx, account, deviceID); err != nil {
			c.replyError(st, iq.IQ, c.stanzaError(err))
			return
		}
		note := commands.Note{Type: commands.NoteInfo, Value: "Device unregistered."}
		c.reply(st, iq.Result(commandResponse(cmd, cmd.SessionID, statusCompleted, note.TokenReader())))
		return
	}
	d, err := c.backend.Register(ctx, sessions.Registration{
		Account: account, Resource: iq.From.Resourcepart(), DeviceID: deviceID,
		VoIPToken: submitted.Get("voip-token"), Token: submitted.Get("token"),
		BundleID: submitted.Get("bundle-id"), Environment: submitted.Get("environment"),
	})
	if err != nil {
		c.replyError(st, iq.IQ, c.stanzaError(err))
		return
	}
	result := form.New(form.Result,
		form.JID("jid", form.Value(c.domain.String())),
		form.Text("node", form.Value(d.Node)),
		form.TextPrivate("secret", form.Value(d.Secret)),
	)
	c.reply(st, iq.Result(commandResponse(cmd, cmd.SessionID, statusCompleted, result.TokenReader())))
}

// publish answers a XEP-0357 publish (in a worker). The answer is result
// whenever the publish was understood, even if no push follows: ejabberd
// deletes a registration on any error but "wait".
func (c *Component) publish(ctx context.Context, st *stream_, iq jingle.IQ) {
	if !c.isServer(iq.From) {
		c.replyError(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.Forbidden,
			Text: map[string]string{"": "only the servers of " + c.servedList() + " may publish here"}})
		return
	}
	if err := c.backend.Publish(ctx, iq.From, *iq.Publish); err != nil {
		c.replyError(st, iq.IQ, c.stanzaError(err))
		return
	}
	c.reply(st, iq.Result(nil))
}

// stanzaError turns a backend error into the stanza error the contract
// names; anything unexpected (Redis down) is a wait error, so servers keep
// the registration and may retry.
func (c *Component) stanzaError(err error) stanza.Error {
	var in *sessions.InputError
	if !errors.As(err, &in) {
		c.log.Error("request failed", "error", err)
		return stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError,
			Text: map[string]string{"": "temporary failure, try again"}}
	}
	e := stanza.Error{Type: stanza.Cancel, Text: map[string]string{"": in.Text}}
	switch {
	case errors.Is(err, sessions.ErrInvalid):
		e.Type, e.Condition = stanza.Modify, stanza.BadRequest
	case errors.Is(err, sessions.ErrUnknownApp), errors.Is(err, sessions.ErrUnknownDevice), errors.Is(err, sessions.ErrUnknownNode):
		e.Condition = stanza.ItemNotFound
	case errors.Is(err, sessions.ErrForbidden):
		e.Condition = stanza.Forbidden
	case errors.Is(err, sessions.ErrTooManyDevices):
		e.Condition = stanza.ResourceConstraint
	default:
		e.Type, e.Condition = stanza.Modify, stanza.BadRequest
	}
	return e
}

func errBadRequest(text string) stanza.Error {
	return stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: map[string]string{"": text}}
}

// reply queues a worker's answer, waiting a little for room.
func (c *Component) reply(st *stream_, r xml.TokenReader) {
	c.replied(st.send(writeWait, r))
}

func (c *Component) replyError(st *stream_, iq stanza.IQ, e stanza.Error) {
	c.reply(st, iq.Error(e))
}

// replyNow queues an answer of the read loop, which never waits.
func (c *Component) replyNow(st *stream_, r xml.TokenReader) {
	c.replied(st.sendNow(r))
}

func (c *Component) replyErrorNow(st *stream_, iq stanza.IQ, e stanza.Error) {
	c.replyNow(st, iq.Error(e))
}

func (c *Component) replied(err error) {
	if err == nil {
		return
	}
	c.m.dropped.WithLabelValues("reply_dropped").Inc()
	if c.limited.first("reply") {
		c.log.Warn("answers not sent: the server does not read them fast enough", "error", err, "note", "logged once a minute")
	}
}

func (c *Component) servedList() string {
	s := ""
	for _, d := range c.cfg.ServedDomains {
		if s != "" {
			s += ", "
		}
		s += d
	}
	return s
}

func newSessionID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
