package jingle_test

import (
	"testing"

	"github.com/jinglepush/jinglepush/jingle"
)

var classifyTests = [...]struct {
	file string
	kind jingle.Kind
}{
	0:   {"ejabberd-iq-disco-info-result.xml", jingle.KindIQ},
	1:   {"ejabberd-iq-roster-result.xml", jingle.KindIQ},
	2:   {"ejabberd-iq-version-get.xml", jingle.KindIQ},
	3:   {"ejabberd-presence-available.xml", jingle.KindPresence},
	4:   {"ejabberd-presence-roster-delay.xml", jingle.KindPresence},
	5:   {"ejabberd-presence-unavailable.xml", jingle.KindPresence},
	6:   {"ejabberd-privilege.xml", jingle.KindPrivilege},
	7:   {"ejabberd-publish-body.xml", jingle.KindIQ},
	8:   {"ejabberd-publish-empty.xml", jingle.KindIQ},
	9:   {"ejabberd-publish-pubopts.xml", jingle.KindIQ},
	10:  {"ejabberd-publish-sender-body.xml", jingle.KindIQ},
	11:  {"ejabberd-servicelog-chat-mam.xml", jingle.KindIgnore},
	12:  {"ejabberd-servicelog-chat.xml", jingle.KindIgnore},
	13:  {"ejabberd-servicelog-iq-result.xml", jingle.KindIgnore},
	14:  {"ejabberd-servicelog-presence-unavailable.xml", jingle.KindIgnore},
	15:  {"ejabberd-servicelog-presence.xml", jingle.KindIgnore},
	16:  {"ejabberd-servicelog-propose-mam-replay.xml", jingle.KindCall},
	17:  {"ejabberd-servicelog-propose-offline-replay.xml", jingle.KindCall},
	18:  {"ejabberd-servicelog-propose.xml", jingle.KindCall},
	19:  {"ejabberd-servicelog-push-enable.xml", jingle.KindIgnore},
	20:  {"ejabberd-servicelog-session-initiate-bare.xml", jingle.KindCall},
	21:  {"ejabberd-servicelog-session-initiate-error.xml", jingle.KindCall}, // ParseCall: not a call
	22:  {"ejabberd-servicelog-session-initiate.xml", jingle.KindCall},
	23:  {"ejabberd-stream-error.xml", jingle.KindIgnore},
	24:  {"ejabberd24-privilege.xml", jingle.KindPrivilege},
	25:  {"handshake.xml", jingle.KindIgnore},
	26:  {"iq-command-cancel.xml", jingle.KindIQ},
	27:  {"iq-command-complete-form.xml", jingle.KindIQ},
	28:  {"iq-command-execute-form.xml", jingle.KindIQ},
	29:  {"iq-command-execute.xml", jingle.KindIQ},
	30:  {"iq-command-unregister.xml", jingle.KindIQ},
	31:  {"iq-disco-info-node.xml", jingle.KindIQ},
	32:  {"iq-disco-info.xml", jingle.KindIQ},
	33:  {"iq-disco-items-commands.xml", jingle.KindIQ},
	34:  {"iq-last.xml", jingle.KindIQ},
	35:  {"iq-ping-result.xml", jingle.KindIQ},
	36:  {"iq-ping.xml", jingle.KindIQ},
	37:  {"iq-pubsub-subscribe.xml", jingle.KindIQ},
	38:  {"jingle-session-accept.xml", jingle.KindCall},
	39:  {"jingle-session-info-mute.xml", jingle.KindCall},
	40:  {"jingle-session-info-ringing.xml", jingle.KindCall},
	41:  {"jingle-session-terminate-decline.xml", jingle.KindCall},
	42:  {"jingle-transport-info.xml", jingle.KindCall},
	43:  {"jmi-accept.xml", jingle.KindCall},
	44:  {"jmi-body-mentions-ns.xml", jingle.KindCall}, // over-accepted; ParseCall says not a call
	45:  {"jmi-carbon-propose.xml", jingle.KindCall},
	46:  {"jmi-error-bounce.xml", jingle.KindCall},
	47:  {"jmi-finish.xml", jingle.KindCall},
	48:  {"jmi-forwarded-presence.xml", jingle.KindCall},
	49:  {"jmi-mam-result-propose.xml", jingle.KindCall},
	50:  {"jmi-nested-propose.xml", jingle.KindCall},
	51:  {"jmi-proceed.xml", jingle.KindCall},
	52:  {"jmi-propose-legacy-delay.xml", jingle.KindCall},
	53:  {"jmi-propose-prefixed.xml", jingle.KindCall},
	54:  {"jmi-propose-pretty.xml", jingle.KindCall},
	55:  {"jmi-propose-video.xml", jingle.KindCall},
	56:  {"jmi-reject-busy.xml", jingle.KindCall},
	57:  {"jmi-retract.xml", jingle.KindCall},
	58:  {"jmi-ringing.xml", jingle.KindCall},
	59:  {"jmi-unknown-element.xml", jingle.KindCall},
	60:  {"malformed-command-bad-action.xml", jingle.KindIQ},
	61:  {"malformed-command-no-node.xml", jingle.KindIQ},
	62:  {"malformed-declaration-before.xml", jingle.KindIgnore},
	63:  {"malformed-foreign-names.xml", jingle.KindCall},
	64:  {"malformed-foreign-root.xml", jingle.KindCall},
	65:  {"malformed-iq-bad-from.xml", jingle.KindIQ},
	66:  {"malformed-iq-bad-type.xml", jingle.KindIQ},
	67:  {"malformed-iq-no-id.xml", jingle.KindIQ},
	68:  {"malformed-iq-no-payload.xml", jingle.KindIQ},
	69:  {"malformed-iq-truncated.xml", jingle.KindIQ},
	70:  {"malformed-iq-two-payloads.xml", jingle.KindIQ},
	71:  {"malformed-jingle-no-action.xml", jingle.KindCall},
	72:  {"malformed-jingle-no-sid.xml", jingle.KindCall},
	73:  {"malformed-presence-bad-delay.xml", jingle.KindPresence},
	74:  {"malformed-presence-bad-from.xml", jingle.KindPresence},
	75:  {"malformed-presence-no-from.xml", jingle.KindPresence},
	76:  {"malformed-presence-truncated.xml", jingle.KindPresence},
	77:  {"malformed-propose-bad-delay.xml", jingle.KindCall},
	78:  {"malformed-propose-bad-entity.xml", jingle.KindCall},
	79:  {"malformed-propose-bad-from.xml", jingle.KindCall},
	80:  {"malformed-propose-bad-media.xml", jingle.KindCall},
	81:  {"malformed-propose-bad-to.xml", jingle.KindCall},
	82:  {"malformed-propose-descriptions.xml", jingle.KindCall},
	83:  {"malformed-propose-huge-attr.xml", jingle.KindCall},
	84:  {"malformed-propose-id-too-long.xml", jingle.KindCall},
	85:  {"malformed-propose-no-from.xml", jingle.KindCall},
	86:  {"malformed-propose-no-id.xml", jingle.KindCall},
	87:  {"malformed-propose-trailing.xml", jingle.KindCall},
	88:  {"malformed-propose-truncated.xml", jingle.KindCall},
	89:  {"malformed-propose-wrapper-no-from.xml", jingle.KindCall},
	90:  {"malformed-publish-no-node.xml", jingle.KindIQ},
	91:  {"malformed-text-before.xml", jingle.KindIgnore},
	92:  {"prosody-fw-deliver-propose.xml", jingle.KindCall},
	93:  {"prosody-fw-hibernated-propose.xml", jingle.KindCall},
	94:  {"prosody-fw-offline-propose.xml", jingle.KindCall},
	95:  {"prosody-fw-session-initiate.xml", jingle.KindCall},
	96:  {"prosody-hibtimeout-propose-again.xml", jingle.KindCall},
	97:  {"prosody-iq-roster-result.xml", jingle.KindIQ},
	98:  {"prosody-presence-available.xml", jingle.KindPresence},
	99:  {"prosody-presence-hibernation-expired.xml", jingle.KindPresence},
	100: {"prosody-presence-snapshot.xml", jingle.KindPresence},
	101: {"prosody-presence-unavailable.xml", jingle.KindPresence},
	102: {"prosody-privilege.xml", jingle.KindPrivilege},
	103: {"prosody-publish-chatstate.xml", jingle.KindIQ},
	104: {"prosody-publish-nodummy.xml", jingle.KindIQ},
	105: {"prosody-publish-pubopts.xml", jingle.KindIQ},
	106: {"prosody-publish-sender.xml", jingle.KindIQ},
	107: {"prosody-publish-summary.xml", jingle.KindIQ},
	108: {"prosody-publish-withbody.xml", jingle.KindIQ},
	109: {"prosody-undeliverable-propose.xml", jingle.KindCall},
	110: {"prosody13-fw-hibernated-propose.xml", jingle.KindCall},
	111: {"prosody13-publish-encrypted-chat.xml", jingle.KindIQ},
	112: {"prosody13-publish-encrypted-voip.xml", jingle.KindIQ},
	113: {"prosody-publish-secret.xml", jingle.KindIQ},
	114: {"ejabberd-servicelog-push-enable-encrypt.xml", jingle.KindIgnore},
	115: {"invite-accept.xml", jingle.KindCall},
	116: {"invite-dino-muji.xml", jingle.KindCall},
	117: {"invite-groupchat.xml", jingle.KindCall},
	118: {"invite-jingle.xml", jingle.KindCall},
	119: {"invite-left.xml", jingle.KindCall},
	120: {"invite-reject.xml", jingle.KindCall},
	121: {"invite-retract.xml", jingle.KindCall},
	122: {"iq-roster-push.xml", jingle.KindIQ},
	123: {"iq-roster-push-remove.xml", jingle.KindIQ},
	124: {"iq-roster-result-many.xml", jingle.KindIQ},
	125: {"jmi-carbon-not-the-accounts.xml", jingle.KindCall},
	126: {"jmi-carbon-received-propose.xml", jingle.KindCall},
	127: {"jmi-carbon-sent-proceed.xml", jingle.KindCall},
	128: {"jmi-carbon-sent-propose.xml", jingle.KindCall},
	129: {"jmi-carbon-spoofed-resource.xml", jingle.KindCall},
	130: {"jmi-carbon-spoofed.xml", jingle.KindCall},
	131: {"jmi-carbon-to-another-account.xml", jingle.KindCall},
	132: {"jmi-finish-migrated.xml", jingle.KindCall},
	133: {"jmi-groupchat-propose.xml", jingle.KindCall},
	134: {"jmi-headline-propose.xml", jingle.KindCall},
	135: {"jmi-reject-tie-break.xml", jingle.KindCall},
	136: {"jmi-retract-no-reason.xml", jingle.KindCall},
	137: {"jmi-retract-tie-break.xml", jingle.KindCall},
	138: {"malformed-finish-migrated-no-to.xml", jingle.KindCall},
	139: {"malformed-invite-accept-no-id.xml", jingle.KindCall},
	140: {"malformed-roster-bad-jid.xml", jingle.KindIQ},
	141: {"malformed-roster-bad-subscription.xml", jingle.KindIQ},
	142: {"prosody-fw-accept-to-self.xml", jingle.KindCall},
}

func TestClassify(t *testing.T) {
	for i, tc := range classifyTests {
		t.Run(tc.file, func(t *testing.T) {
			if got := jingle.Classify(testdata(t, tc.file)); got != tc.kind {
				t.Errorf("%d: Classify(%s) = %v, want %v", i, tc.file, got, tc.kind)
			}
		})
	}
}

// Every stanza in testdata has an expected Kind, so a new file cannot be
// forgotten.
func TestClassifyCoversTestdata(t *testing.T) {
	listed := make(map[string]bool)
	for _, tc := range classifyTests {
		if listed[tc.file] {
			t.Errorf("%s listed twice", tc.file)
		}
		listed[tc.file] = true
	}
	for _, name := range testdataFiles(t) {
		if !listed[name] {
			t.Errorf("testdata/%s has no entry in classifyTests", name)
		}
	}
}

var classifyInlineTests = [...]struct {
	raw  string
	kind jingle.Kind
}{
	0:  {"", jingle.KindIgnore},
	1:  {"   ", jingle.KindIgnore},
	2:  {"<", jingle.KindIgnore},
	3:  {"<iq", jingle.KindIQ},
	4:  {"\r\n\t <presence/>", jingle.KindPresence},
	5:  {"<presences/>", jingle.KindIgnore},
	6:  {"<c:presence xmlns:c='jabber:client'/>", jingle.KindPresence},
	7:  {"<:presence/>", jingle.KindIgnore},
	8:  {"<a:b:iq/>", jingle.KindIgnore},
	9:  {"<message><body>hi</body></message>", jingle.KindIgnore},
	10: {"<message><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>urn:xmpp:jingle:apps:rtp:1</body></message></forwarded></message>", jingle.KindIgnore},
	11: {"<message><forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client'><jingle xmlns='urn:xmpp:jingle:1'/></iq></forwarded></message>", jingle.KindCall},
	12: {"<message><propose xmlns='urn:xmpp:jingle-message:0' id='x'/></message>", jingle.KindIgnore}, // not forwarded: a stray direct message
	13: {"<message><privilege xmlns='urn:xmpp:privilege:2'/></message>", jingle.KindPrivilege},
	14: {"<message><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><privilege xmlns='urn:xmpp:privilege:2'/></message></forwarded></message>", jingle.KindIgnore},
	15: {"<iq\n type='get'/>", jingle.KindIQ},
	16: {"<message>", jingle.KindIgnore},
	17: {"\ufeff<presence/>", jingle.KindIgnore},
	18: {"<stream:features/>", jingle.KindIgnore},
	19: {"<message><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><invite xmlns='urn:xmpp:call-invites:0'/></message></forwarded></message>", jingle.KindCall},
	20: {"<message><invite xmlns='urn:xmpp:call-invites:0'/></message>", jingle.KindIgnore},
	21: {"<message><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><x xmlns='urn:xmpp:jingle:muji:0'/><y xmlns='urn:xmpp:call-message:1'/></message></forwarded></message>", jingle.KindIgnore},
	22: {"<message xmlns:j='urn:xmpp:jingle-message:0'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><j:propose id='x'/></message></forwarded></message>", jingle.KindCall},
}

func TestClassifyInline(t *testing.T) {
	for i, tc := range classifyInlineTests {
		if got := jingle.Classify([]byte(tc.raw)); got != tc.kind {
			t.Errorf("%d: Classify(%q) = %v, want %v", i, tc.raw, got, tc.kind)
		}
	}
}

func TestClassifyAllocs(t *testing.T) {
	for _, name := range []string{"ejabberd-servicelog-chat.xml", "ejabberd-servicelog-presence.xml", "prosody-fw-offline-propose.xml", "prosody-privilege.xml"} {
		raw := testdata(t, name)
		if n := testing.AllocsPerRun(100, func() { jingle.Classify(raw) }); n != 0 {
			t.Errorf("Classify(%s) allocates %v times, want 0", name, n)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[jingle.Kind]string{jingle.KindIgnore: "ignore", jingle.KindCall: "call", jingle.KindPresence: "presence", jingle.KindIQ: "iq", jingle.KindPrivilege: "privilege", 42: "Kind(42)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
