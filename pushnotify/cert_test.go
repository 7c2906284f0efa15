package pushnotify

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// testCA issues client certificates like Apple's push certificates.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Apple WWDR CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a client certificate for bundleID's VoIP services, valid
// until notAfter, with an RSA key as Apple's are. A nil ca self-signs it.
func (ca *testCA) issue(t *testing.T, bundleID string, notAfter time.Time) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "VoIP Services: " + bundleID, ExtraNames: []pkix.AttributeTypeAndValue{{Type: []int{0, 9, 2342, 19200300, 100, 1, 1}, Value: bundleID}}},
		NotBefore:    time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	parent, signer := tmpl, crypto.Signer(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	must(t, err)
	return der, key
}

// writePEM writes the certificate and its PKCS#8 key in one file, as
// `openssl pkcs12 -nodes` does.
func writePEM(t *testing.T, certDER []byte, key any) string {
	t.Helper()
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	path := filepath.Join(t.TempDir(), "voip.pem")
	must(t, os.WriteFile(path, out, 0o600))
	return path
}

// Certificate auth with a .pem and a .p12 file: APNs sees the app's
// client certificate on the TLS connection, and no JWT.
func TestCertificateAuth(t *testing.T) {
	ca := newTestCA(t)
	a := testenv.StartAPNs(t, testenv.RequireClientCert(ca.pool))
	der, key := ca.issue(t, bundle, time.Now().Add(365*24*time.Hour))

	p12 := filepath.Join(t.TempDir(), "voip.p12")
	must(t, os.WriteFile(p12, encodeP12(t, der, key, "s3cret pässword"), 0o600))

	for _, c := range []struct{ name, file, password string }{
		{"pem", writePEM(t, der, key), ""},
		{"p12", p12, "s3cret pässword"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a.Reset()
			app, err := LoadApp(AppFiles{BundleID: bundle, Environment: Sandbox, CertificateFile: c.file, CertificatePassword: c.password})
			if err != nil {
				t.Fatalf("LoadApp: %v", err)
			}
			h := startReal(t, a, Config{Apps: []App{app}})
			h.push(t, voipPush(tokOK, time.Now().Add(45*time.Second)))
			h.settle(t)

			reqs := a.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1\n%s", len(reqs), h.logs)
			}
			if cc := reqs[0].ClientCertificate; cc == nil || cc.Subject.CommonName != "VoIP Services: "+bundle {
				t.Errorf("client certificate %v", cc)
			}
			if got := reqs[0].Header.Get("authorization"); got != "" {
				t.Errorf("certificate auth sent authorization %q", got)
			}
			wantCount(t, h.s.m.pushes, 1, "voip", "success")
			if v := gauge(t, h, "jinglepush_apns_certificate_expiry_timestamp_seconds"); v < float64(time.Now().Add(364*24*time.Hour).Unix()) {
				t.Errorf("certificate expiry %v, want in a year", time.Unix(int64(v), 0))
			}
		})
	}
}

// A certificate APNs does not accept fails at the TLS handshake: an
// operator error (the app unhealthy, no retry, no device removed).
func TestCertificateRefused(t *testing.T) {
	ca := newTestCA(t)
	a := testenv.StartAPNs(t, testenv.RequireClientCert(ca.pool))
	der, key := (*testCA)(nil).issue(t, bundle, time.Now().Add(24*time.Hour)) // self-signed
	app, err := LoadApp(AppFiles{BundleID: bundle, CertificateFile: writePEM(t, der, key)})
	must(t, err)
	h := startReal(t, a, Config{Apps: []App{app}, RetryMin: 10 * time.Millisecond})

	h.push(t, voipPush(tokOK, time.Now().Add(45*time.Second)))
	h.settle(t)
	wantCount(t, h.s.m.pushes, 1, "voip", "tls")
	wantCount(t, h.s.m.retries, 0, "voip", "tls")
	if err := h.s.Healthy(); err == nil || !strings.Contains(err.Error(), bundle+".voip (production): tls") {
		t.Errorf("Healthy = %v", err)
	}
	if got := h.removed.list(); len(got) != 0 {
		t.Errorf("removed %q", got)
	}
}

// An endpoint whose certificate is not trusted (apns.ca_file missing) is
// an operator error too.
func TestUntrustedEndpoint(t *testing.T) {
	a := testenv.StartAPNs(t)
	h := start(t, nil, Config{Endpoint: a.URL}) // the system's CAs only
	h.push(t, voipPush(tokOK, time.Now().Add(45*time.Second)))
	h.settle(t)
	wantCount(t, h.s.m.pushes, 1, "voip", "tls")
	if err := h.s.Healthy(); err == nil {
		t.Error("healthy with an untrusted endpoint")
	}
}

// An expired certificate makes the app unhealthy from the start.
func TestExpiredCertificate(t *testing.T) {
	der, key := newTestCA(t).issue(t, bundle, time.Now().Add(-time.Hour))
	app, err := LoadApp(AppFiles{BundleID: bundle, CertificateFile: writePEM(t, der, key)})
	must(t, err)
	h := start(t, nil, Config{Apps: []App{app}})
	if err := h.s.Healthy(); err == nil || !strings.Contains(err.Error(), "certificate expired") {
		t.Errorf("Healthy = %v", err)
	}
	if !strings.Contains(h.logs.String(), "has expired") {
		t.Error("not logged")
	}
}

func TestLoadApp(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	p8 := filepath.Join(dir, "AuthKey_KEY1234567.p8")
	must(t, os.WriteFile(p8, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600))

	app, err := LoadApp(AppFiles{BundleID: bundle, TeamID: "TEAM123456", KeyID: "KEY1234567", KeyFile: p8})
	if err != nil {
		t.Fatal(err)
	}
	if !app.AuthKey.Equal(key) || app.Environment != Production {
		t.Errorf("app %+v", app)
	}

	der, rsaKey := newTestCA(t).issue(t, bundle, time.Now().Add(time.Hour))
	p12 := filepath.Join(dir, "voip.p12")
	must(t, os.WriteFile(p12, encodeP12(t, der, rsaKey, "right"), 0o600))
	notKey := filepath.Join(dir, "not-a-key.p8")
	must(t, os.WriteFile(notKey, []byte("hello"), 0o600))

	for name, f := range map[string]AppFiles{
		"p12 with a wrong password": {BundleID: bundle, CertificateFile: p12, CertificatePassword: "wrong"},
		"missing certificate":       {BundleID: bundle, CertificateFile: filepath.Join(dir, "none.pem")},
		"key file not PEM":          {BundleID: bundle, TeamID: "TEAM123456", KeyID: "KEY1234567", KeyFile: notKey},
		"both kinds of credentials": {BundleID: bundle, TeamID: "TEAM123456", KeyID: "KEY1234567", KeyFile: p8, CertificateFile: p12},
	} {
		if _, err := LoadApp(f); err == nil || !strings.HasPrefix(err.Error(), "pushnotify: app "+bundle) {
			t.Errorf("%s: LoadApp = %v", name, err)
		}
	}
	// A .p12 Go cannot read (OpenSSL 3 writes AES and SHA-256 by default)
	// gets the command that converts it.
	modern := filepath.Join(dir, "modern.p12")
	must(t, os.WriteFile(modern, []byte("0\x82 not the legacy format"), 0o600))
	if _, err := LoadApp(AppFiles{BundleID: bundle, CertificateFile: modern}); err == nil || !strings.Contains(err.Error(), "openssl pkcs12 -in modern.p12 -out modern.pem -nodes -legacy") {
		t.Errorf("unreadable .p12: LoadApp = %v", err)
	}
	if _, err := LoadApp(AppFiles{BundleID: bundle, CertificateFile: p12, CertificatePassword: "wrong"}); err == nil || strings.Contains(err.Error(), "openssl") {
		t.Errorf("wrong password: LoadApp = %v", err)
	}

	if _, err := New(Config{Apps: []App{{BundleID: bundle}}}, nil, nil, nil); err == nil {
		t.Error("New took an app without credentials")
	}
	if _, err := New(Config{Apps: []App{{BundleID: bundle, AuthKey: key}}}, nil, nil, nil); err == nil {
		t.Error("New took token auth without team and key ids")
	}
	if _, err := New(Config{DryRun: true, Apps: []App{{BundleID: bundle}, {BundleID: bundle}}}, nil, nil, nil); err == nil {
		t.Error("New took one app twice")
	}
}
