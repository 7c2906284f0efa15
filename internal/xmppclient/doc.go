// Package xmppclient is a small XMPP client (c2s) for integration tests and
// the demo command: it logs in over plain TCP with SASL PLAIN, binds a
// resource, can enable XEP-0198 stream management, and then sends and
// receives raw stanzas.
//
// It is deliberately thin. Stanzas go out as the caller wrote them (checked
// for well-formedness first) and come back as the exact bytes the server sent,
// so a test sees what a phone would see. The only things the client does on
// its own are the ones a real client must do to stay connected: answer
// XEP-0198 ack requests and XEP-0199 pings, and match IQ replies to requests.
//
// There is no TLS. The servers under test run on 127.0.0.1 and are configured
// to allow PLAIN without it (Prosody: c2s_require_encryption = false and
// allow_unencrypted_plain_auth = true); never point this client at a real
// server.
//
// Inbound stanzas land in a mailbox. [Client.WaitFor] takes the first one that
// matches a predicate and leaves the others in place, so a test can wait for
// the reply it cares about without losing what arrived before it.
// [Client.Next] and [Client.Incoming] take them in arrival order.
//
// [ElementReader] is the tokenizer underneath, exported because tests of the
// component stream need the same framing.
package xmppclient
