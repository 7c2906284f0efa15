package testenv

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Federation joins the XMPP servers of one test over server-to-server
// connections (XEP-0220 dialback, no TLS, no certificates), on loopback,
// without DNS and without touching /etc/hosts. Give the same Federation to
// StartProsody and StartEjabberd (the Federation option): each server then
// listens for s2s on a free port of its own address, joins the federation
// under its domain, and reaches every other member by its domain; a domain
// that is not a member fails at once.
//
// How each server finds its peers:
//   - Prosody loads mod_testenv_s2s (a module of this package), which answers
//     mod_s2s's lookups from the federation's peer file (PeersFile), read for
//     every new connection.
//   - ejabberd asks a DNS server of the federation's own on 127.0.0.1 (its
//     inetrc names it as the only nameserver), which answers the SRV query for
//     _xmpp-server._tcp.<domain> with the peer's address and port. An inetrc
//     host entry is not enough: ejabberd resolves the SRV target, or the
//     domain itself, with the system's getaddrinfo, which ignores the inetrc.
//
// Members may start in any order and on any ports: a server that starts later
// is found by those already running, and a restarted one keeps its port.
type Federation struct {
	// PeersFile holds one line "domain address port" per member.
	PeersFile string

	dns *s2sDNS

	mu     sync.Mutex
	peers  map[string]netip.AddrPort // domain -> s2s listener
	owners map[string]any            // domain -> the server that joined with it
}

// NewFederation starts an empty federation; it ends with the test.
func NewFederation(t testing.TB) *Federation {
	t.Helper()
	f := &Federation{
		PeersFile: filepath.Join(t.TempDir(), "s2s-peers"),
		peers:     make(map[string]netip.AddrPort),
		owners:    make(map[string]any),
	}
	if err := f.writePeers(); err != nil {
		t.Fatalf("testenv: federation: %v", err)
	}
	dns, err := startS2SDNS(f.lookup)
	if err != nil {
		t.Fatalf("testenv: federation: DNS: %v", err)
	}
	f.dns = dns
	t.Cleanup(dns.close)
	return f
}

// Peers returns every member's s2s listener by domain.
func (f *Federation) Peers() map[string]netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]netip.AddrPort, len(f.peers))
	for d, a := range f.peers {
		m[d] = a
	}
	return m
}

// DNSAddr is the UDP address of the federation's DNS server.
func (f *Federation) DNSAddr() netip.AddrPort { return f.dns.addr() }

func (f *Federation) lookup(domain string) (netip.AddrPort, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.peers[domain]
	return a, ok
}

// join makes domain a member, reachable at addr; a server that retries its
// start on other ports joins again with its new port. owner tells servers
// apart: a second server may not take a member's domain.
func (f *Federation) join(domain string, addr netip.AddrPort, owner any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.owners[domain]; ok && o != owner {
		return fmt.Errorf("federation: another server already serves %s", domain)
	}
	f.owners[domain] = owner
	f.peers[domain] = addr
	return f.writePeersLocked()
}

func (f *Federation) writePeers() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writePeersLocked()
}

// writePeersLocked replaces the peer file in one rename, so that Prosody
// never reads half of it.
func (f *Federation) writePeersLocked() error {
	domains := make([]string, 0, len(f.peers))
	for d := range f.peers {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	var b strings.Builder
	for _, d := range domains {
		a := f.peers[d]
		fmt.Fprintf(&b, "%s %s %d\n", d, a.Addr(), a.Port())
	}
	tmp := f.PeersFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.PeersFile)
}
