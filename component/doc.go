// Package component is jinglepush's XMPP edge: an XEP-0114 external
// component connection to Prosody or ejabberd. It dials the server's
// component port, does the handshake (with mellium.im/xmpp), reconnects with
// backoff when the server goes away, answers every IQ itself (disco, ping,
// version, the registration commands, XEP-0357 publishes), and hands call
// signals and presence to a Backend through bounded per-account queues, so
// its read loop never waits on Redis or APNs.
package component
