package jingle_test

import (
	"fmt"

	"github.com/jinglepush/jinglepush/jingle"
)

func ExampleParseCall() {
	// What Prosody's firewall forwards when a propose is queued for bob's
	// hibernated phone (deploy/prosody/jinglepush.pfw, hibernated chain).
	raw := []byte(`<message from='example.com' to='undeliverable@push.example.com'>` +
		`<forwarded xmlns='urn:xmpp:forward:0'>` +
		`<message xmlns='jabber:client' type='chat' id='m1' from='alice@example.com/phone' to='bob@example.com'>` +
		`<propose xmlns='urn:xmpp:jingle-message:0' id='a1b2c3'>` +
		`<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>` +
		`<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/>` +
		`</propose>` +
		`<delay xmlns='urn:xmpp:delay' stamp='2026-11-22T04:29:07Z' from='bob@example.com'/>` +
		`</message></forwarded></message>`)

	if jingle.Classify(raw) != jingle.KindCall {
		return // the firehose: not worth parsing
	}
	ev, err := jingle.ParseCall(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Action, ev.ID, "from", ev.From, "to", ev.To)
	fmt.Println("media:", ev.Media)
	fmt.Println("sent:", ev.Delay)
	fmt.Println("undeliverable:", ev.Undeliverable())
	// Output:
	// propose a1b2c3 from alice@example.com/phone to bob@example.com
	// media: [audio video]
	// sent: 2026-11-22 04:29:07 +0000 UTC
	// undeliverable: true
}
