package pushnotify

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

// HTTP/2 connection settings. A connection that died silently (a NAT that
// forgot it, a vanished APNs node) swallows every request sent on it until
// a PING goes unanswered: 10 s at most here, well inside a call's ring
// time. A PING every 5 s on an idle connection costs nothing.
const (
	dialTimeout      = 10 * time.Second
	tcpKeepAlive     = 15 * time.Second
	readIdleTimeout  = 5 * time.Second // no frame for this long: send a PING
	pingTimeout      = 5 * time.Second // no PING answer: the connection is dead
	writeByteTimeout = 10 * time.Second
)

// minTokenAge is how old a JWT must be before an ExpiredProviderToken
// answer may replace it: Apple answers TooManyProviderTokenUpdates to
// tokens renewed more often than every 20 minutes.
const minTokenAge = 20 * time.Minute

// clientKey names the client of one app in one environment.
type clientKey struct{ bundleID, environment string }

// client is one app's HTTP/2 connection to one APNs environment, kept open
// and reused by every push (APNs takes connection churn for an attack).
type client struct {
	key    clientKey
	apns   *apns2.Client
	signer *signer       // shared by the clients of one signing key; nil with certificates
	slots  chan struct{} // requests in flight on the connection
	// faults holds the last operator error of each topic (see topicKinds),
	// nil while it is healthy. Topics are told apart because a credential
	// may cover one and not the other (a VoIP Services certificate).
	faults [len(topicKinds)]atomic.Pointer[string]
}

// topicKinds are the kinds that stand for an app's two topics: <bundle>
// (alerts and background pushes) and <bundle>.voip.
var topicKinds = [...]Kind{KindAlert, KindVoIP}

// topic is the apns-topic of the client's app for pushes of kind k.
func (c *client) topic(k Kind) string {
	return Notification{Kind: k, BundleID: c.key.bundleID}.Topic()
}

// topicIndex is the index in topicKinds of k's topic.
func topicIndex(k Kind) int {
	if k == KindVoIP {
		return 1
	}
	return 0
}

// signer is the JWT of one signing key (team id, key id), shared by every
// app and environment that uses the key: Apple wants one token reused,
// renewed between 20 and 60 minutes. apns2 renews it after 50 minutes.
type signer struct {
	tok *token.Token
}

// issuedAt is the iat of the current JWT (unix seconds), 0 before the first.
func (g *signer) issuedAt() int64 {
	g.tok.Lock()
	defer g.tok.Unlock()
	return g.tok.IssuedAt
}

// renew reacts to ExpiredProviderToken for a request sent while the JWT
// issued at seen was current. It reports whether the next request carries
// a newer JWT: one another request renewed meanwhile, or a new one because
// the current is at least minTokenAge old. A younger token is kept:
// renewing it would earn TooManyProviderTokenUpdates.
func (g *signer) renew(seen int64) bool {
	g.tok.Lock()
	defer g.tok.Unlock()
	if g.tok.IssuedAt != seen {
		return true
	}
	if time.Since(time.Unix(g.tok.IssuedAt, 0)) >= minTokenAge {
		g.tok.IssuedAt = 0 // apns2 signs a new one for the next request
		return true
	}
	return false
}

func (s *Sender) newClient(k clientKey, app *App, g *signer) *client {
	host := s.cfg.Endpoint
	if host == "" {
		host = apns2.HostProduction
		if k.environment == Sandbox {
			host = apns2.HostDevelopment
		}
	}
	c := &apns2.Client{
		Host:       strings.TrimRight(host, "/"),
		HTTPClient: &http.Client{Transport: s.cfg.roundTripper},
	}
	if c.HTTPClient.Transport == nil {
		c.HTTPClient.Transport = s.transport(app)
	}
	if g != nil {
		c.Token = g.tok
	}
	if app.Certificate != nil {
		c.Certificate = *app.Certificate
	}
	return &client{key: k, apns: c, signer: g, slots: make(chan struct{}, s.cfg.MaxInflight)}
}

// transport is the HTTP/2 transport of one client: one TLS connection
// (with the app's certificate for certificate auth), never more, so
// requests beyond the server's stream limit wait for a stream rather than
// open connections.
func (s *Sender) transport(app *App) *http2.Transport {
	tlsConf := &tls.Config{RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if app.Certificate != nil {
		tlsConf.Certificates = []tls.Certificate{*app.Certificate}
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}
	return &http2.Transport{
		TLSClientConfig: tlsConf,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{NetDialer: dialer, Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
		StrictMaxConcurrentStreams: true,
		ReadIdleTimeout:            readIdleTimeout,
		PingTimeout:                pingTimeout,
		WriteByteTimeout:           writeByteTimeout,
	}
}

// closeIdle closes the client's connection once nothing uses it.
func (c *client) closeIdle() {
	if t, ok := c.apns.HTTPClient.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
