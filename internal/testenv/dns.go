package testenv

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// s2sDNS is a tiny authoritative DNS server on loopback (UDP) that knows the
// s2s listeners of one test's servers and nothing else. ejabberd needs it:
// it finds a remote server with an SRV query through Erlang's own resolver,
// which an inetrc can point here, and then resolves the SRV target with the
// system's getaddrinfo, which reads /etc/hosts and DNS but never the inetrc.
// An SRV record whose target is the peer's IP address gets through both.
type s2sDNS struct {
	conn   net.PacketConn
	lookup func(domain string) (netip.AddrPort, bool)
	done   chan struct{}
	once   sync.Once
}

// startS2SDNS listens on a kernel-chosen UDP port of 127.0.0.1 and answers
// from lookup until close.
func startS2SDNS(lookup func(string) (netip.AddrPort, bool)) (*s2sDNS, error) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &s2sDNS{conn: conn, lookup: lookup, done: make(chan struct{})}
	go d.serve()
	return d, nil
}

// addr is the server's UDP address.
func (d *s2sDNS) addr() netip.AddrPort {
	return d.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (d *s2sDNS) close() {
	d.once.Do(func() {
		_ = d.conn.Close()
		<-d.done
	})
}

func (d *s2sDNS) serve() {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp, ok := d.answer(buf[:n]); ok {
			_, _ = d.conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query: an SRV record for
// _xmpp-server._tcp.<peer>, an A record for <peer>, no records for other
// types of a peer's names, and NXDOMAIN for every other name. ok is false
// for a packet that is not a query (it gets no answer at all).
func (d *s2sDNS) answer(query []byte) (resp []byte, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RCode: dnsmessage.RCodeSuccess}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	domain, isSRV := strings.CutPrefix(name, "_xmpp-server._tcp.")
	peer, known := d.lookup(domain)
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	// TTL 0: a restarted peer on a new port is found at once.
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	switch {
	case !known:
	case isSRV && q.Type == dnsmessage.TypeSRV:
		target, err := dnsmessage.NewName(peer.Addr().String() + ".")
		if err != nil {
			return nil, false
		}
		err = b.SRVResource(rr, dnsmessage.SRVResource{Port: peer.Port(), Target: target})
		if err != nil {
			return nil, false
		}
	case !isSRV && q.Type == dnsmessage.TypeA && peer.Addr().Is4():
		if b.AResource(rr, dnsmessage.AResource{A: peer.Addr().As4()}) != nil {
			return nil, false
		}
	}
	resp, err = b.Finish()
	return resp, err == nil
}
