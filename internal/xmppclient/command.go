package xmppclient

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// CommandResult is the answer to a XEP-0050 ad-hoc command request.
type CommandResult struct {
	// Raw is the whole IQ reply.
	Raw string
	// Status is executing, completed or canceled; empty on an error reply.
	Status    string
	SessionID string
	Node      string
	// Actions are the actions the responder allows next (<actions/>), the
	// default one first.
	Actions []string
	// Notes are the texts of <note/> elements.
	Notes []string
	// FormType is the type of the command's data form (form, result, ...),
	// empty when it carries none.
	FormType string
	// Fields maps each field's var to its values.
	Fields map[string][]string
	// Error is set when the reply was an IQ error (Command returns it too).
	Error *StanzaError
}

// Value returns the first value of field, or "".
func (r *CommandResult) Value(field string) string {
	if v := r.Fields[field]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Command runs a XEP-0050 command on to. action is execute, next, prev,
// complete or cancel ("" lets the responder apply its default, execute);
// sessionID continues a multi-stage command ("" starts one). Non-empty fields
// are sent as a submit form. An IQ error reply gives a result holding Raw and
// Error, and the *StanzaError as the error.
func (c *Client) Command(ctx context.Context, to, node, action, sessionID string, fields map[string]string) (*CommandResult, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "<iq type='set' id='%s' to='%s'><command xmlns='%s' node='%s'", newID(), escape(to), nsCommands, escape(node))
	if action != "" {
		b.WriteString(" action='" + escape(action) + "'")
	}
	if sessionID != "" {
		b.WriteString(" sessionid='" + escape(sessionID) + "'")
	}
	if len(fields) == 0 {
		b.WriteString("/></iq>")
	} else {
		b.WriteString(">")
		writeForm(&b, "", fields)
		b.WriteString("</command></iq>")
	}

	reply, err := c.IQ(ctx, b.String())
	if reply.Raw == "" {
		return nil, err // no reply at all
	}
	res := &CommandResult{Raw: reply.Raw}
	if se := (*StanzaError)(nil); errors.As(err, &se) {
		res.Error = se
		return res, err
	}
	var v struct {
		Command struct {
			Status    string `xml:"status,attr"`
			SessionID string `xml:"sessionid,attr"`
			Node      string `xml:"node,attr"`
			Actions   *struct {
				Execute  string `xml:"execute,attr"`
				Children []struct {
					XMLName xml.Name
				} `xml:",any"`
			} `xml:"actions"`
			Notes []string `xml:"note"`
			Form  *struct {
				Type   string `xml:"type,attr"`
				Fields []struct {
					Var    string   `xml:"var,attr"`
					Values []string `xml:"value"`
				} `xml:"field"`
			} `xml:"jabber:x:data x"`
		} `xml:"http://jabber.org/protocol/commands command"`
	}
	if err := reply.Unmarshal(&v); err != nil {
		return res, fmt.Errorf("xmppclient: command reply: %w", err)
	}
	cmd := v.Command
	res.Status, res.SessionID, res.Node, res.Notes = cmd.Status, cmd.SessionID, cmd.Node, cmd.Notes
	if a := cmd.Actions; a != nil {
		if a.Execute != "" {
			res.Actions = append(res.Actions, a.Execute)
		}
		for _, ch := range a.Children {
			if ch.XMLName.Local != a.Execute {
				res.Actions = append(res.Actions, ch.XMLName.Local)
			}
		}
	}
	if cmd.Form != nil {
		res.FormType = cmd.Form.Type
		res.Fields = make(map[string][]string, len(cmd.Form.Fields))
		for _, f := range cmd.Form.Fields {
			res.Fields[f.Var] = append(res.Fields[f.Var], f.Values...)
		}
	}
	return res, nil
}
