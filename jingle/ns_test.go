package jingle_test

import (
	"testing"

	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/forward"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/version"

	"github.com/jinglepush/jinglepush/jingle"
)

// The namespaces mellium also names are spelled as mellium spells them.
func TestNamespacesMatchMellium(t *testing.T) {
	for ours, theirs := range map[string]string{
		jingle.NSCommands:   commands.NS,
		jingle.NSDataForm:   form.NS,
		jingle.NSDiscoInfo:  disco.NSInfo,
		jingle.NSDiscoItems: disco.NSItems,
		jingle.NSPing:       ping.NS,
		jingle.NSVersion:    version.NS,
		jingle.NSDelay:      delay.NS,
		jingle.NSForward:    forward.NS,
		jingle.NSCarbons:    carbons.NS,
		jingle.NSRoster:     roster.NS,
		jingle.NSClient:     stanza.NSClient,
		jingle.NSServer:     stanza.NSServer,
	} {
		if ours != theirs {
			t.Errorf("%q, mellium says %q", ours, theirs)
		}
	}
}
