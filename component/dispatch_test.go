package component

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
)

// newDispatcher returns a Component that is not connected, for calling
// dispatch and read directly, and its debug log.
func newDispatcher(t *testing.T) (*Component, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	c, err := New(Config{Domain: "push.localhost", ServedDomains: []string{"localhost"}, LogXML: true}, newBackend(),
		slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c, &log
}

func capture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "jingle", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(raw)
}

// Only the server's XEP-0356 advertisement is logged, and as what it grants;
// one from anyone else is dropped without its XML.
func TestPrivilege(t *testing.T) {
	c, log := newDispatcher(t)
	raw := capture(t, "prosody-privilege.xml")
	c.dispatch(context.Background(), nil, raw)
	if got := log.String(); !strings.Contains(got, "server granted privileges") || !strings.Contains(got, "presence:managed_entity") ||
		strings.Contains(got, "<perm") {
		t.Errorf("log: %s", got)
	}
	for _, from := range []string{"bob@localhost/phone", "localhost/x", "evil.example"} {
		log.Reset()
		c.dispatch(context.Background(), nil, bytes.Replace(raw, []byte("from='localhost'"), []byte("from='"+from+"'"), 1))
		if got := log.String(); strings.Contains(got, "granted") || strings.Contains(got, "<perm") || strings.Contains(got, "urn:xmpp:privilege") {
			t.Errorf("privileges from %s: %s", from, got)
		}
	}
	if n := testutil.ToFloat64(c.m.dropped.WithLabelValues("untrusted_privilege")); n != 3 {
		t.Errorf("dropped{untrusted_privilege} = %v", n)
	}
}

// Tokens and secrets stay out of the XML log lines: every stanza read
// (xmpp.log_xml) and every one dropped.
func TestLogsRedacted(t *testing.T) {
	c, log := newDispatcher(t)
	// Stanzas with secrets: the registration form, publishes with
	// publish-options and firehose copies of push enables, and two that are
	// dropped: a copy that only mentions Jingle, and a broken publish.
	secretDrop := `<message from='localhost' to='push.localhost'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='bob@localhost/a' to='bob@localhost'>` +
		`<body>urn:xmpp:jingle:1</body><x xmlns='jabber:x:data' type='submit'><field var='voip-token'><value>0123456789abcdef</value></field></x></message></forwarded></message>`
	brokenPublish := strings.Replace(string(capture(t, "prosody-publish-secret.xml")), " id='dac75b9614f40e138c66fc106fc82810010aecbdc086acfe9536051642a2c400'", "", 1)
	var stream bytes.Buffer
	for _, name := range []string{"iq-command-execute-form.xml", "ejabberd-servicelog-push-enable.xml", "ejabberd-servicelog-push-enable-encrypt.xml"} {
		stream.Write(capture(t, name))
	}
	stream.WriteString(secretDrop + brokenPublish)
	_ = c.read(context.Background(), nil, newFramer(bufio.NewReader(&stream), 65536))

	got := log.String()
	for _, secret := range []string{"abababababababab", "CDCDCDCDCDCDCDCD", "abcdef0123", "BapSuTC6k2i2u9BWFZg7Ww", "0123456789abcdef", "q8Zt1Xr0bN4kV2cW9yL6pA"} {
		if strings.Contains(got, secret) {
			t.Errorf("%s in the log:\n%s", secret, got)
		}
	}
	if n := strings.Count(got, "msg=RECV"); n != 5 {
		t.Errorf("%d RECV lines:\n%s", n, got)
	}
	if n := strings.Count(got, `msg="stanza dropped"`); n < 2 || !strings.Contains(got, jingle.Redacted) || !strings.Contains(got, "8D5A4C2E-1F0B-4C1A") {
		t.Errorf("%d drop lines, or nothing redacted, or too much:\n%s", n, got)
	}
}

// One account's call events share a queue: the callee's, also for a
// carbon, which goes where the message it copies goes.
func TestCallAccount(t *testing.T) {
	c, _ := newDispatcher(t)
	alice, bob := jid.MustParse("alice@remote.example/pc"), jid.MustParse("bob@localhost/phone")
	for i, tc := range [...]struct {
		ev   jingle.CallEvent
		want string
	}{
		0: {jingle.CallEvent{Action: jingle.ActionPropose, From: alice, To: bob}, "bob@localhost"},
		1: {jingle.CallEvent{Action: jingle.ActionRetract, From: alice, To: bob}, "bob@localhost"},
		2: {jingle.CallEvent{Action: jingle.ActionProceed, From: bob, To: alice}, "bob@localhost"},
		3: {jingle.CallEvent{Action: jingle.ActionReject, From: bob, To: alice}, "bob@localhost"},
		4: {jingle.CallEvent{Action: jingle.ActionFinish, From: bob, To: alice}, "bob@localhost"},
		5: {jingle.CallEvent{Action: jingle.ActionFinish, From: alice, To: bob}, "bob@localhost"},
		6: {jingle.CallEvent{Action: jingle.ActionInvite, From: alice, To: bob}, "bob@localhost"},
		7: {jingle.CallEvent{Action: jingle.ActionInviteAccept, From: bob, To: alice}, "bob@localhost"},
		8: {jingle.CallEvent{Action: jingle.ActionInviteLeft, From: bob, To: alice}, "bob@localhost"},
		// bob calling alice from his phone, copied to his desk: alice is called.
		9:  {jingle.CallEvent{Action: jingle.ActionPropose, From: bob, To: alice, Carbon: jingle.CarbonSent, CarbonOf: bob.Bare()}, "alice@remote.example"},
		10: {jingle.CallEvent{Action: jingle.ActionProceed, From: bob, To: alice, Carbon: jingle.CarbonSent, CarbonOf: bob.Bare()}, "bob@localhost"},
		11: {jingle.CallEvent{Action: jingle.ActionPropose, From: alice, To: bob, Carbon: jingle.CarbonReceived, CarbonOf: bob.Bare()}, "bob@localhost"},
	} {
		if got := c.callAccount(tc.ev).String(); got != tc.want {
			t.Errorf("%d: %s", i, got)
		}
	}
}
