package testenv_test

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// EnvCapture names a directory: the federation tests then write there each
// stanza they check, exactly as the component received it, one file per
// case (the captures in jingle/testdata come from here).
const EnvCapture = "JINGLEPUSH_CAPTURE_DIR"

// capture writes st to $JINGLEPUSH_CAPTURE_DIR/name, when that is set.
func capture(t *testing.T, name string, st xmppclient.Stanza) {
	t.Helper()
	dir := os.Getenv(EnvCapture)
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(wireBytes(st)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wireBytes undoes what ElementReader adds to a top-level stanza to make it
// standalone (the stream's default namespace, which the servers never
// repeat on a stanza), giving back the bytes the server wrote.
func wireBytes(st xmppclient.Stanza) string {
	return strings.Replace(st.Raw, "<"+st.Name.Local+" xmlns='jabber:component:accept'", "<"+st.Name.Local, 1)
}

// jmiCopy is a forwarded copy of a XEP-0353 message as the component gets
// it: <message from=host to=component><forwarded><message>...
type jmiCopy struct {
	From      string `xml:"from,attr"`
	To        string `xml:"to,attr"`
	Forwarded struct {
		Message struct {
			From    string   `xml:"from,attr"`
			To      string   `xml:"to,attr"`
			Type    string   `xml:"type,attr"`
			Actions []jmiAct `xml:",any"`
		} `xml:"jabber:client message"`
	} `xml:"urn:xmpp:forward:0 forwarded"`
}

type jmiAct struct {
	XMLName  xml.Name
	ID       string `xml:"id,attr"`
	Migrated *struct {
		To string `xml:"to,attr"`
	} `xml:"migrated"`
}

// action returns the inner message's XEP-0353 element.
func (c jmiCopy) action() (jmiAct, bool) {
	for _, a := range c.Forwarded.Message.Actions {
		if a.XMLName.Space == nsJMI {
			return a, true
		}
	}
	return jmiAct{}, false
}

const nsJMI = "urn:xmpp:jingle-message:0"

// jmiCopyOf matches the copy, sent to the JID to, of the XEP-0353 action
// (propose, proceed, ...) with id; got, if not nil, receives it.
func jmiCopyOf(to, action, id string, got *jmiCopy) func(xmppclient.Stanza) bool {
	return func(st xmppclient.Stanza) bool {
		var c jmiCopy
		if st.Name.Local != "message" || st.To() != to || st.Unmarshal(&c) != nil {
			return false
		}
		a, ok := c.action()
		if !ok || a.XMLName.Local != action || a.ID != id {
			return false
		}
		if got != nil {
			*got = c
		}
		return true
	}
}

// anyCopyOf matches every forwarded copy, to any address, of a XEP-0353
// message with id.
func anyCopyOf(id string) func(xmppclient.Stanza) bool {
	return func(st xmppclient.Stanza) bool {
		var c jmiCopy
		if st.Name.Local != "message" || st.Unmarshal(&c) != nil {
			return false
		}
		a, ok := c.action()
		return ok && a.ID == id
	}
}

// jmi builds a XEP-0353 message of type chat (as the XEP says) with a
// <store/> hint; inner goes inside the action element.
func jmi(to, action, id, inner string) string {
	return "<message to='" + to + "' type='chat' id='" + action + "-" + id + "'><" + action + " xmlns='" + nsJMI + "' id='" + id + "'>" +
		inner + "</" + action + "><store xmlns='urn:xmpp:hints'/></message>"
}

const audio = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>"

// login logs user in with the given resource, with XEP-0198 if sm, and
// closes the stream at cleanup.
func login(ctx context.Context, t testing.TB, info testenv.ServerInfo, user, resource string, sm bool) *xmppclient.Client {
	t.Helper()
	cl, err := xmppclient.Dial(ctx, xmppclient.Config{
		Addr: info.C2SAddr, JID: info.JID(user), Password: info.Password, Resource: resource,
		SM: sm, Presence: true, Trace: testenv.LogWriter(t, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// enableCarbons turns XEP-0280 message carbons on for cl.
func enableCarbons(ctx context.Context, t *testing.T, cl *xmppclient.Client) {
	t.Helper()
	if _, err := cl.IQ(ctx, "<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>"); err != nil {
		t.Fatalf("carbons for %s: %v", cl.JID(), err)
	}
}
