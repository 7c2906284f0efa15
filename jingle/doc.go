// Package jingle turns the raw stanzas that jinglepush's component stream
// receives into call, presence and IQ events. The component builds its
// replies with mellium's payload types (see "mellium" below).
//
// It is pure: no I/O, no logging, no state. The component's framer hands over
// one top-level element at a time, exactly as it came off the stream (without
// the stream's namespace declarations, so top-level stanzas have no namespace,
// while copies embedded in <forwarded/> carry xmlns='jabber:client').
//
// [Classify] looks at the bytes only and is cheap enough for ejabberd's
// mod_service_log firehose, which copies every stanza of every local user to
// the component. Only what it keeps is parsed: [ParseCall] for forwarded
// XEP-0353 and XEP-0482 messages (carbons included) and XEP-0166 IQs,
// [ParsePresence], [ParseIQ] (XEP-0357 publishes, XEP-0050 commands, disco,
// ping, version), [ParsePrivilege] and [ParseRoster]. [Redact] hides the
// secrets of a raw stanza before it is logged.
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
//
// # mellium
//
// Where mellium.im/xmpp v0.23.0 has the payload, jinglepush uses its types:
//   - form, commands (Actions, Note), disco (Info), disco/info, disco/items
//     and version build the component's registration forms, command
//     results, disco answers and version answer (component/iq.go);
//     commands.Response carries no payload and disco.ItemsQuery is only the
//     request, so the <command/> and disco#items <query/> around them are
//     wrapped there;
//   - ping: its NS; a pong is an empty result, nothing to build;
//   - roster: ParseRoster returns roster.Item values;
//   - jid and stanza: addresses and IQ headers throughout.
//
// Where it does not, one line each:
//   - form, for reading: a submitted form or publish-options is read here
//     into Form, since form.Data can only be filled through encoding/xml's
//     Decoder (a second reader) and reports "unexpected element" where the
//     component must name the field;
//   - delay, carbons, forward, roster (reading): their types decode with
//     encoding/xml, on the call path too, where this package reads the same
//     elements itself; their namespaces are checked to be the same
//     (TestNamespacesMatchMellium).
package jingle
