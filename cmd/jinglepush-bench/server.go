package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// xmppServer plays the XMPP server's side of XEP-0114 for the component's
// connections: it accepts them, checks each handshake, spreads the stanzas
// it writes over them in turn (as ejabberd spreads a component's stanzas
// over its connections) and counts the IQ answers.
type xmppServer struct {
	ln     net.Listener
	domain string
	secret string

	wmu   sync.Mutex
	conns []*xconn
	next  int

	results atomic.Int64 // IQ results received
	errors  atomic.Int64 // IQ errors received
	closed  chan error
}

// xconn is one component connection.
type xconn struct {
	c net.Conn
	w *bufio.Writer
}

func listenXMPP(domain, secret string) (*xmppServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &xmppServer{ln: ln, domain: domain, secret: secret, closed: make(chan error, 16)}, nil
}

func (s *xmppServer) addr() string { return s.ln.Addr().String() }

// accept waits for n component connections and does their handshakes.
func (s *xmppServer) accept(n int, timeout time.Duration) error {
	if tl, ok := s.ln.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(timeout))
	}
	for i := range n {
		c, err := s.ln.Accept()
		if err != nil {
			return fmt.Errorf("component connection %d of %d: %w", i+1, n, err)
		}
		if err := s.handshake(c, fmt.Sprintf("bench-stream-%d", i)); err != nil {
			c.Close()
			return err
		}
	}
	return nil
}

func (s *xmppServer) handshake(c net.Conn, id string) error {
	r := xmppclient.NewElementReader(c)
	if _, err := r.ReadHeader(); err != nil {
		return err
	}
	fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='%s' xmlns='jabber:component:accept' from='%s'>`, id, s.domain)
	hs, err := r.Next()
	if err != nil {
		return err
	}
	sum := sha1.Sum([]byte(id + s.secret))
	if !strings.Contains(hs.Raw, hex.EncodeToString(sum[:])) {
		return fmt.Errorf("bad handshake %s", hs.Raw)
	}
	if _, err := c.Write([]byte("<handshake/>")); err != nil {
		return err
	}
	s.wmu.Lock()
	s.conns = append(s.conns, &xconn{c: c, w: bufio.NewWriterSize(c, 256<<10)})
	s.wmu.Unlock()
	go func() {
		for {
			st, err := r.Next()
			if err != nil {
				s.closed <- err
				return
			}
			switch {
			case strings.HasPrefix(st.Raw, "<iq") && st.Type() == "result":
				s.results.Add(1)
			case strings.HasPrefix(st.Raw, "<iq") && st.Type() == "error":
				s.errors.Add(1)
			}
		}
	}()
	return nil
}

// write queues raw on the next connection; flush sends what is queued.
func (s *xmppServer) write(raw string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c := s.conns[s.next%len(s.conns)]
	s.next++
	_, err := c.w.WriteString(raw)
	return err
}

func (s *xmppServer) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, c := range s.conns {
		if err := c.w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// close ends the listener and the connections.
func (s *xmppServer) close() {
	s.ln.Close()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, c := range s.conns {
		c.c.Close()
	}
}

// The stanzas a Prosody or ejabberd would send.

// registerIQ registers a device with both tokens, as the iOS app does
// (docs/ios-app.md).
func registerIQ(user, domain, component string, n int, voip, tok string) string {
	return fmt.Sprintf(`<iq type='set' id='r%d' from='%s@%s/phone' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='register-push-apns' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='device-id'><value>iphone</value></field><field var='voip-token'><value>%s</value></field><field var='token'><value>%s</value></field></x></command></iq>`,
		n, user, domain, component, voip, tok)
}

func proposeCopy(callee, domain, component string, n int64) string {
	return fmt.Sprintf(`<message to='%s' from='%s'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' to='%s@%s' from='caller@%s/pc' id='m%d'><propose xmlns='urn:xmpp:jingle-message:0' id='c%d'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/></message></forwarded></message>`,
		component, domain, callee, domain, domain, n, n)
}

// firehoseCopy is what ejabberd's mod_service_log sends for a chat message
// between two other users: not a call.
func firehoseCopy(domain, component string, n int64) string {
	return fmt.Sprintf(`<message to='%s' from='%s' id='%d'><forwarded xmlns='urn:xmpp:forward:0'><message xml:lang='en' to='carol@%s' from='dave@%s/laptop' type='chat' id='msg%d' xmlns='jabber:client'><body>see you at eight, and bring the book</body><active xmlns='http://jabber.org/protocol/chatstates'/><origin-id xmlns='urn:xmpp:sid:0' id='o%d'/></message></forwarded></message>`,
		component, domain, n, domain, domain, n, n)
}
