package jingle

// Namespaces of the payloads jinglepush reads or writes.
const (
	NSJingleMessage = "urn:xmpp:jingle-message:0"       // XEP-0353 Jingle Message Initiation
	NSJingle        = "urn:xmpp:jingle:1"               // XEP-0166 Jingle
	NSRTP           = "urn:xmpp:jingle:apps:rtp:1"      // XEP-0167 RTP sessions (<description media=…/>)
	NSRTPInfo       = "urn:xmpp:jingle:apps:rtp:info:1" // XEP-0167 session-info payloads (<ringing/>)
	NSCallInvites   = "urn:xmpp:call-invites:0"         // XEP-0482 Call Invites
	NSForward       = "urn:xmpp:forward:0"              // XEP-0297 Stanza Forwarding
	NSCarbons       = "urn:xmpp:carbons:2"              // XEP-0280 Message Carbons
	NSStanzaID      = "urn:xmpp:sid:0"                  // XEP-0359 stanza and origin ids
	NSDelay         = "urn:xmpp:delay"                  // XEP-0203 Delayed Delivery
	NSDelayLegacy   = "jabber:x:delay"                  // XEP-0091, obsolete, still seen in old archives
	NSPush          = "urn:xmpp:push:0"                 // XEP-0357 Push Notifications
	NSPubSub        = "http://jabber.org/protocol/pubsub"
	NSPrivilege1    = "urn:xmpp:privilege:1" // XEP-0356 as sent by ejabberd 23.01
	NSPrivilege2    = "urn:xmpp:privilege:2" // XEP-0356 as sent by Prosody and ejabberd ≥ 24
	NSCommands      = "http://jabber.org/protocol/commands"
	NSDataForm      = "jabber:x:data"
	NSDiscoInfo     = "http://jabber.org/protocol/disco#info"
	NSDiscoItems    = "http://jabber.org/protocol/disco#items"
	NSPing          = "urn:xmpp:ping"
	NSVersion       = "jabber:iq:version"
	NSRoster        = "jabber:iq:roster"      // RFC 6121 roster (XEP-0356 lets the component read it)
	NSTigaseEncrypt = "tigase:push:encrypt:0" // Prosody 13 mod_cloud_notify_encrypted

	// Stanza namespaces: top-level stanzas on a component stream, and the
	// copies embedded in <forwarded/>.
	NSComponent = "jabber:component:accept"
	NSClient    = "jabber:client"
	NSServer    = "jabber:server"
)

// FORM_TYPE values of the data forms in a XEP-0357 publish.
const (
	FormTypePublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	FormTypeSummary        = "urn:xmpp:push:summary"
)

// NodeCommands is the disco#items node that lists a XEP-0050 responder's commands.
const NodeCommands = NSCommands
