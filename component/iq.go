package component

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/sessions"
)

// The registration commands (DESIGN.md section 3).
const (
	nodeRegister   = "register-push-apns"
	nodeUnregister = "unregister-push-apns"
)

var features = []string{
	jingle.NSPush, jingle.NSCommands, jingle.NSPing, jingle.NSVersion, jingle.NSDiscoInfo, jingle.NSDiscoItems,
}

func (c *Component) discoInfo(st *stream_, iq jingle.IQ) {
	switch iq.Node {
	case "":
		c.reply(st, iq.Result(jingle.DiscoInfo("pubsub", "push", "jinglepush", features)))
	case nodeRegister, nodeUnregister:
		c.reply(st, iq.Result(jingle.DiscoInfoNode(iq.Node, "automation", "command-node", commandName(iq.Node),
			[]string{jingle.NSCommands, jingle.NSDataForm})))
	case jingle.NSCommands:
		c.reply(st, iq.Result(jingle.DiscoInfoNode(iq.Node, "automation", "command-list", "Commands", nil)))
	default:
		c.replyError(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
}

func (c *Component) discoItems(st *stream_, iq jingle.IQ) {
	switch iq.Node {
	case jingle.NSCommands:
		c.reply(st, iq.Result(jingle.DiscoItems(iq.Node,
			jingle.Item{JID: c.domain, Node: nodeRegister, Name: commandName(nodeRegister)},
			jingle.Item{JID: c.domain, Node: nodeUnregister, Name: commandName(nodeUnregister)},
		)))
	case "":
		c.reply(st, iq.Result(jingle.DiscoItems("")))
	default:
		c.replyError(st, iq.IQ, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
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
func registerForm() *jingle.FormSpec {
	return &jingle.FormSpec{
		Title:        "Register an iOS device for pushes",
		Instructions: "Give the app install's id and at least one of its tokens.",
		Fields: []jingle.Field{
			{Var: "device-id", Type: "text-single", Label: "Device id (stable per app install)", Required: true},
			{Var: "voip-token", Type: "text-single", Label: "PushKit VoIP token (hex)"},
			{Var: "token", Type: "text-single", Label: "APNs token for alerts (hex)"},
			{Var: "bundle-id", Type: "text-single", Label: "App bundle id"},
			{Var: "environment", Type: "list-single", Label: "APNs environment (production or sandbox)"},
		},
	}
}

func unregisterForm() *jingle.FormSpec {
	return &jingle.FormSpec{
		Title:  "Unregister an iOS device",
		Fields: []jingle.Field{{Var: "device-id", Type: "text-single", Label: "Device id", Required: true}},
	}
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
	reply := jingle.CommandReply{Node: cmd.Node, SessionID: cmd.SessionID}
	switch cmd.Action {
	case "cancel":
		reply.Status = jingle.StatusCanceled
		c.reply(st, iq.Result(jingle.CommandResponse(reply)))
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
		reply.Status = jingle.StatusExecuting
		if reply.SessionID == "" {
			reply.SessionID = newSessionID()
		}
		reply.Form = registerForm()
		if cmd.Node == nodeUnregister {
			reply.Form = unregisterForm()
		}
		c.reply(st, iq.Result(jingle.CommandResponse(reply)))
		return
	}

	form := cmd.Form
	deviceID := form.Get("device-id")
	if deviceID == "" {
		deviceID = form.Get("android-id")
	}
	account := iq.From.Bare().String()
	reply.Status = jingle.StatusCompleted
	if cmd.Node == nodeUnregister {
		if err := c.backend.Unregister(ctx, account, deviceID); err != nil {
			c.replyError(st, iq.IQ, c.stanzaError(err))
			return
		}
		reply.Note = jingle.Note{Text: "Device unregistered."}
		c.reply(st, iq.Result(jingle.CommandResponse(reply)))
		return
	}
	d, err := c.backend.Register(ctx, sessions.Registration{
		Account: account, Resource: iq.From.Resourcepart(), DeviceID: deviceID,
		VoIPToken: form.Get("voip-token"), Token: form.Get("token"),
		BundleID: form.Get("bundle-id"), Environment: form.Get("environment"),
	})
	if err != nil {
		c.replyError(st, iq.IQ, c.stanzaError(err))
		return
	}
	reply.Form = &jingle.FormSpec{Type: "result", Fields: []jingle.Field{
		{Var: "jid", Type: "jid-single", Values: []string{c.domain.String()}},
		{Var: "node", Type: "text-single", Values: []string{d.Node}},
		{Var: "secret", Type: "text-private", Values: []string{d.Secret}},
	}}
	c.reply(st, iq.Result(jingle.CommandResponse(reply)))
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

func (c *Component) reply(st *stream_, r xml.TokenReader) {
	if err := st.send(5*time.Second, r); err != nil {
		c.m.dropped.WithLabelValues("reply_failed").Inc()
		c.log.Warn("reply not sent", "error", err)
	}
}

func (c *Component) replyError(st *stream_, iq stanza.IQ, e stanza.Error) {
	c.reply(st, iq.Error(e))
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
