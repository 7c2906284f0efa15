package testenv

import (
	"testing"
	"time"
)

// XMPPServer is an XMPP server under test. Prosody and Ejabberd implement
// it, so that tests written against this interface run on both.
type XMPPServer interface {
	// Info returns the addresses, names and secrets tests need.
	Info() ServerInfo
	// Register creates an account user@Info().Domain.
	Register(t testing.TB, user, password string)
	// Stop stops the server. It is safe to call more than once.
	Stop()
	// Restart stops the server and starts it again on the same ports with
	// the same data (accounts, offline messages, archives); t is failed if
	// that does not work.
	Restart(t testing.TB)
	// Log returns the server's log so far.
	Log() string
	// LogErrors returns the log lines logged at error level.
	LogErrors() []string
	// LogOffset returns the current length of the log, to pass to WaitForLog.
	LogOffset() int64
	// WaitForLog waits until the log, from offset on, holds a line that
	// contains substr, and returns that line; it fails the test after
	// timeout.
	WaitForLog(t testing.TB, offset int64, substr string, timeout time.Duration) string
}

// ServerInfo describes a running XMPP server under test.
type ServerInfo struct {
	// Software names the server: "prosody" or "ejabberd".
	Software string
	// C2SAddr is the client listener, host:port on 127.0.0.1. It accepts
	// SASL PLAIN without TLS.
	C2SAddr string
	// ComponentAddr is the XEP-0114 component listener, host:port.
	ComponentAddr string
	// S2SAddr is the server-to-server listener, host:port, when the server
	// is a member of a Federation; empty otherwise (no s2s at all).
	S2SAddr string
	// Domain is the users' domain (VirtualHost).
	Domain string
	// ComponentDomain is jinglepush's component JID.
	ComponentDomain string
	// Secret is the component's shared secret.
	Secret string
	// Password is the password of the users registered at start.
	Password string
}

// Info returns i; it makes any type that embeds ServerInfo satisfy that part
// of XMPPServer.
func (i ServerInfo) Info() ServerInfo { return i }

// JID returns user@Domain.
func (i ServerInfo) JID(user string) string { return user + "@" + i.Domain }
