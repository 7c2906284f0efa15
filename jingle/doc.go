// Package jingle turns the raw stanzas that jinglepush's component stream
// receives into call, presence and IQ events, and builds the payloads of the
// component's replies.
//
// It is pure: no I/O, no logging, no state. The component's framer hands over
// one top-level element at a time, exactly as it came off the stream (without
// the stream's namespace declarations, so top-level stanzas have no namespace,
// while copies embedded in <forwarded/> carry xmlns='jabber:client').
//
// [Classify] looks at the bytes only and is cheap enough for ejabberd's
// mod_service_log firehose, which copies every stanza of every local user to
// the component. Only what it keeps is parsed: [ParseCall] for forwarded
// XEP-0353 messages and XEP-0166 IQs, [ParsePresence], [ParseIQ] (XEP-0357
// publishes, XEP-0050 commands, disco, ping, version) and [ParsePrivilege].
//
// Parsers report [ErrNotCall] for well-formed input that carries no call, and
// [ErrMalformed] for anything broken or out of bounds; they never panic.
//
// # One reader
//
// Every parser walks the stanza with one hand-written XML reader (scan.go),
// not encoding/xml: on the call path it costs a third of the time and an
// eighth of the allocations (a forwarded propose: 4.2 µs and 17 allocations
// against 14 µs and 132 through encoding/xml). It reads all the XML a server
// may send (references, CDATA, namespace prefixes) and refuses what XMPP
// forbids (comments, processing instructions, DTDs); FuzzScanner holds it to
// encoding/xml token by token.
package jingle
