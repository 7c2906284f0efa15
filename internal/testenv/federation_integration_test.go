package testenv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// The remote server of the federation tests: another domain on another
// loopback address.
const (
	remoteDomain = "remote.test"
	remoteAddr   = "127.0.0.2"
)

// messageFrom matches a chat message from the full JID from with body.
func messageFrom(from, body string) func(xmppclient.Stanza) bool {
	return func(st xmppclient.Stanza) bool {
		return st.Name.Local == "message" && st.From() == from && strings.Contains(st.Raw, "<body>"+body+"</body>")
	}
}

// exchange sends a message from a to b and one back, and waits for each.
func exchange(ctx context.Context, t *testing.T, a, b *xmppclient.Client) {
	t.Helper()
	for _, p := range [][2]*xmppclient.Client{{a, b}, {b, a}} {
		from, to := p[0], p[1]
		body := "hello from " + from.JID()
		if _, err := from.SendMessage(to.JID(), body); err != nil {
			t.Fatal(err)
		}
		if _, err := to.WaitFor(ctx, messageFrom(from.JID(), body)); err != nil {
			t.Fatalf("%s got no message from %s: %v", to.JID(), from.JID(), err)
		}
	}
}

// TestFederation: a user of remote.test (a second Prosody on 127.0.0.2)
// and users of a home Prosody and a home ejabberd exchange messages both
// ways over s2s, authenticated by dialback, without TLS, DNS or /etc/hosts.
func TestFederation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fed := testenv.NewFederation(t)
	remote := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: remoteDomain, Addr: remoteAddr, Users: []string{"alice"}, Federation: fed, WithoutJinglepush: true})
	if !strings.HasPrefix(remote.S2SAddr, remoteAddr+":") || !strings.HasPrefix(remote.C2SAddr, remoteAddr+":") {
		t.Errorf("remote listens on %s and %s", remote.C2SAddr, remote.S2SAddr)
	}
	alice := loginPhone(ctx, t, remote.Info(), "alice", false)

	t.Run("prosody", func(t *testing.T) {
		home := testenv.StartProsody(t, testenv.ProsodyOptions{Domain: "prosody.test", Users: []string{"bob"}, Federation: fed})
		bob := loginPhone(ctx, t, home.Info(), "bob", false)
		exchange(ctx, t, alice, bob)
		home.WaitForLog(t, 0, "dialback", 10*time.Second)
		checkNoErrors(t, home, remote)
	})
	t.Run("ejabberd", func(t *testing.T) {
		home := testenv.StartEjabberd(t, testenv.EjabberdOptions{Domain: "ejabberd.test", Users: []string{"bob"}, Federation: fed})
		bob := loginPhone(ctx, t, home.Info(), "bob", false)
		exchange(ctx, t, alice, bob)
		checkNoErrors(t, home, remote)
	})
}

// checkNoErrors reports the error lines each server logged.
func checkNoErrors(t *testing.T, servers ...testenv.XMPPServer) {
	t.Helper()
	for _, s := range servers {
		if errs := s.LogErrors(); len(errs) > 0 {
			t.Errorf("%s (%s) logged errors:\n%s", s.Info().Software, s.Info().Domain, strings.Join(errs, "\n"))
		}
	}
}
