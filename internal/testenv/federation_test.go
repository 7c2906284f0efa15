package testenv

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The federation's DNS server answers what ejabberd asks: the SRV record
// of a member (with its address as the target), the member's address, and
// NXDOMAIN for everything else.
func TestS2SDNS(t *testing.T) {
	f := NewFederation(t)
	if err := f.join("remote.test", netip.MustParseAddrPort("127.0.0.2:15269"), t); err != nil {
		t.Fatal(err)
	}
	if err := f.join("remote.test", netip.MustParseAddrPort("127.0.0.2:15270"), "another server"); err == nil {
		t.Error("a second server joined under a member's domain")
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", f.DNSAddr().String())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Go's resolver refuses an address as an SRV target (Erlang's takes
	// it), so read this answer by hand.
	srv := srvAnswer(t, f.dns, "_xmpp-server._tcp.remote.test.")
	if srv == nil || srv.Target.String() != "127.0.0.2." || srv.Port != 15269 {
		t.Errorf("SRV: %+v", srv)
	}
	addrs, err := r.LookupHost(ctx, "remote.test")
	if err != nil || !slices.Equal(addrs, []string{"127.0.0.2"}) {
		t.Errorf("A: %v %v", err, addrs)
	}
	for _, name := range []string{"other.test", "_xmpps-server._tcp.remote.test"} {
		_, err := r.LookupHost(ctx, name)
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
	if got := f.Peers(); len(got) != 1 || got["remote.test"].Port() != 15269 {
		t.Errorf("peers %v", got)
	}
}

// srvAnswer asks d for the SRV record of name and returns it, or nil.
func srvAnswer(t *testing.T, d *s2sDNS, name string) *dnsmessage.SRVResource {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET})
	q, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := d.answer(q)
	if !ok {
		t.Fatal("no answer")
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatal(err)
	}
	if m.ID != 7 || !m.Authoritative || len(m.Answers) != 1 {
		t.Errorf("answer %+v", m)
		return nil
	}
	srv, _ := m.Answers[0].Body.(*dnsmessage.SRVResource)
	return srv
}

func TestRenderFederated(t *testing.T) {
	f := NewFederation(t)
	p, _ := ProsodyOptions{Domain: "remote.test", Addr: "127.0.0.2", Federation: f, WithoutJinglepush: true}.withDefaults()
	cfg := renderProsodyConfig(p, "/tmp/x", listeners{c2s: 21000, component: 21001, s2s: 21002}, false)
	checkContains(t, "prosody config", cfg,
		`interfaces = { "127.0.0.2" }`, `s2s_interfaces = { "127.0.0.2" }`, `s2s_ports = { 21002 }`,
		`s2s_require_encryption = false`, `s2s_secure_auth = false`,
		`testenv_s2s_peers = "`+f.PeersFile+`"`, `"dialback"; "testenv_s2s";`, `plugin_paths = { "/tmp/x/plugins" }`)
	checkLacks(t, "prosody config", cfg, `modules_disabled = { "s2s" }`, `Include "jinglepush.cfg.lua"`)

	e, _ := EjabberdOptions{Domain: "ejabberd.test", Addr: "127.0.0.3", Federation: f}.withDefaults()
	cfg = renderEjabberdConfig(e, listeners{c2s: 21000, s2s: 21002}, []string{"/a.yml", "/b.yml"}, false)
	checkContains(t, "ejabberd config", cfg,
		"    port: 21002\n    ip: \"127.0.0.3\"\n    module: ejabberd_s2s_in\n", "s2s_use_starttls: false\n",
		"outgoing_s2s_ipv4_address: \"127.0.0.3\"\n", "  mod_s2s_dialback: {}\n",
		"include_config_file:\n  - \"/a.yml\"\n  - \"/b.yml\"\n")
	dns := f.DNSAddr()
	checkContains(t, "inetrc", renderEjabberdInetrc(f), "{resolv_conf, []}.\n", "{nameserver, {127,0,0,1}, "+strconv.Itoa(int(dns.Port()))+"}.\n")
	checkLacks(t, "inetrc", renderEjabberdInetrc(nil), "nameserver")

	if _, err := (ProsodyOptions{Addr: "10.0.0.1"}).withDefaults(); err == nil {
		t.Error("a non-loopback address was accepted")
	}
}
