package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// SIGHUP to the running binary: a rotated key signs the next push's JWT,
// new alert texts and log level apply, a setting that needs a restart is
// named and kept, and the component stream stays up. A broken
// configuration, or a key file that does not load, is refused whole and
// the running one stays.
func TestReloadOnSIGHUP(t *testing.T) {
	srv := prosodyServers(t, testenv.ProsodyOptions{})
	s := newStack(t, srv, stackOptions{process: true})
	bob, _, ac, d := s.hibernatedCallee()
	first := s.callAndRetract(ac, bob, 1)
	verifyJWT(t, first.Header.Get("authorization"), readP8(t, filepath.Join(filepath.Dir(s.cfgPath), "AuthKey_KEY1234567.p8")))

	// Rotate the key, change the texts, the log level and a setting that
	// needs a restart.
	newKey := filepath.Join(filepath.Dir(s.cfgPath), "AuthKey_NEWKEY7890.p8")
	writeP8(t, newKey)
	good := s.editConfig(t,
		`key_id = "KEY1234567"`, `key_id = "NEWKEY7890"`,
		"AuthKey_KEY1234567.p8", "AuthKey_NEWKEY7890.p8",
		"[log]\nlevel = \"debug\"", "[log]\nlevel = \"info\"",
		"[http]", "[alerts]\nmissed = \"Verpasster Anruf von %s\"\n\n[http]",
		`reconnect_min = "50ms"`, `reconnect_min = "60ms"`,
	)
	s.hup(t, "configuration reloaded")
	logs := s.logs()
	for _, want := range []string{
		"APNs credentials reloaded",
		`changed="alerts.missed apns.apps[0].key_file apns.apps[0].key_id log.level"`,
		`take effect only after a restart; they keep their running values" component=reload keys=xmpp.reconnect_min`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q in the log:\n%s", want, logs)
		}
	}
	if strings.Contains(logs[strings.LastIndex(logs, "configuration reloaded"):], "level=DEBUG") {
		t.Error("debug lines after log.level became info")
	}
	second := s.callAndRetract(ac, bob, 3) // its VoIP push, then (below) the missed-call alert
	hdr, _ := verifyJWT(t, second.Header.Get("authorization"), readP8(t, newKey))
	if hdr["kid"] != "NEWKEY7890" {
		t.Errorf("kid %v after the rotation", hdr["kid"])
	}
	alert := s.apns.Requests()[3]
	if b := body(t, alert); alert.Token != d.token || !strings.Contains(string(alert.Body), "Verpasster Anruf von ") || b.Event != "missed" {
		t.Errorf("missed-call alert after the reload: %s", alert.Body)
	}
	if n := s.metric(`jinglepush_component_connections_total{result="connected"}`); n != 1 {
		t.Errorf("%v connections: the reload dropped the stream", n)
	}
	if v := s.metric("jinglepush_config_last_reload_successful"); v != 1 {
		t.Errorf("last_reload_successful = %v", v)
	}
	if v := s.metric(`jinglepush_apns_credentials_info{auth="token",bundle_id="` + bundleID + `",key_id="NEWKEY7890",serial=""}`); v != 1 {
		t.Errorf("credentials_info does not name the new key")
	}

	// Broken configurations are refused; pushes keep the new key.
	for i, broken := range []struct{ from, to, logged string }{
		{"[apns]", "[apns\n", "toml"},
		{"AuthKey_NEWKEY7890.p8", "AuthKey_MISSING.p8", "AuthKey_MISSING.p8"},
	} {
		s.setConfig(t, strings.Replace(good, broken.from, broken.to, 1))
		s.hup(t, "configuration not reloaded")
		if !strings.Contains(s.logs(), broken.logged) {
			t.Errorf("broken config %d: the log does not say what is wrong (%q)", i, broken.logged)
		}
		if v := s.metric("jinglepush_config_last_reload_successful"); v != 0 {
			t.Errorf("broken config %d: last_reload_successful = %v", i, v)
		}
	}
	third := s.callAndRetract(ac, bob, 5)
	verifyJWT(t, third.Header.Get("authorization"), readP8(t, newKey))
	if n := s.metric(`jinglepush_component_connections_total{result="connected"}`); n != 1 {
		t.Errorf("%v connections after the refused reloads", n)
	}
}

// callAndRetract places a call from ac to bob, waits for its VoIP push (the n-th
// push so far) and returns it; the caller then retracts it, which sends
// the missed-call alert.
func (s *stack) callAndRetract(ac interface{ Send(string) error }, bob string, n int) testenv.Request {
	s.t.Helper()
	id := uuid.NewString()
	if err := ac.Send(propose(bob, id)); err != nil {
		s.t.Fatal(err)
	}
	push := s.pushes(n)[n-1]
	if push.Header.Get("apns-push-type") != "voip" {
		s.t.Fatalf("push %d is %s, not the call's VoIP push", n, push.Header.Get("apns-push-type"))
	}
	if err := ac.Send(jmi("retract", bob, id)); err != nil {
		s.t.Fatal(err)
	}
	s.pushes(n + 1)
	return push
}

// editConfig replaces pairs of strings in the stack's config file and
// returns the new text.
func (s *stack) editConfig(t *testing.T, pairs ...string) string {
	t.Helper()
	b, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("the config has no %q", pairs[i])
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	s.setConfig(t, text)
	return text
}

func (s *stack) setConfig(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(s.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// hup sends SIGHUP to the child process and waits for a new log line
// holding want.
func (s *stack) hup(t *testing.T, want string) {
	t.Helper()
	s.mu.Lock()
	in := s.running
	s.mu.Unlock()
	seen := strings.Count(in.logs.String(), want)
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitShort, func() bool { return strings.Count(in.logs.String(), want) > seen }, "%q in the log after SIGHUP", want)
}

// verifyJWT checks an ES256 bearer token against key and returns its
// header.
func verifyJWT(t *testing.T, authorization string, key *ecdsa.PublicKey) (hdr map[string]any, claims map[string]any) {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(authorization, "bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("authorization %q is not a bearer JWT", authorization)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("JWT signature: %v", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(key, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the JWT is not signed with the expected key")
	}
	for i, out := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, out) != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	return hdr, claims
}

func readP8(t *testing.T, path string) *ecdsa.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &k.(*ecdsa.PrivateKey).PublicKey
}

// What a reload applies and what it names as needing a restart.
func TestDiffKeys(t *testing.T) {
	a, err := Load("testdata/good-full.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := a
	b.APNs.Apps = slices.Clone(a.APNs.Apps)
	b.APNs.Apps[0].KeyID = "OTHER12345"
	b.APNs.Apps[1].CertificatePassword = "new"
	b.Alerts.Missed = "Missed: %s"
	b.Log.Level = "warn"
	b.Log.Format = "text"
	b.XMPP.Workers = 9
	applied, restart := diffKeys(a, b)
	if want := []string{"alerts.missed", "apns.apps[0].key_id", "apns.apps[1].certificate_password", "log.level"}; !slices.Equal(applied, want) {
		t.Errorf("applied %q, want %q", applied, want)
	}
	if want := []string{"log.format", "xmpp.workers"}; !slices.Equal(restart, want) {
		t.Errorf("restart %q, want %q", restart, want)
	}

	// Apps swapped or added: their keys need a restart.
	c := a
	c.APNs.Apps = []AppConfig{a.APNs.Apps[1], a.APNs.Apps[0], a.APNs.Apps[2], {BundleID: "com.example.new"}}
	applied, restart = diffKeys(a, c)
	if len(applied) != 0 || !slices.Contains(restart, "apns.apps[0].bundle_id") || !slices.Contains(restart, "apns.apps[3].bundle_id") {
		t.Errorf("apps reordered and added: applied %q, restart %q", applied, restart)
	}
}
