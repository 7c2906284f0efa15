package pushnotify

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/sideshow/apns2/certificate"
	"github.com/sideshow/apns2/token"
)

// App is one iOS app (bundle id) with its APNs credentials: token auth (a
// .p8 signing key with its key id and team id) or certificate auth.
type App struct {
	BundleID    string
	Environment string // the default for devices that do not say

	// Token auth.
	TeamID  string
	KeyID   string
	AuthKey *ecdsa.PrivateKey

	// Certificate auth.
	Certificate *tls.Certificate
}

// AppFiles names the credential files of an App.
type AppFiles struct {
	BundleID            string
	Environment         string
	TeamID, KeyID       string
	KeyFile             string // .p8
	CertificateFile     string // .p12 or .pem (certificate and key)
	CertificatePassword string
}

// LoadApp reads an app's credential files. An app with neither a key nor a
// certificate is returned without credentials (usable with dry runs only).
func LoadApp(f AppFiles) (App, error) {
	app := App{BundleID: f.BundleID, Environment: f.Environment, TeamID: f.TeamID, KeyID: f.KeyID}
	if app.Environment == "" {
		app.Environment = Production
	}
	switch {
	case f.KeyFile != "" && f.CertificateFile != "":
		return App{}, fmt.Errorf("pushnotify: app %s: both a key file and a certificate file", f.BundleID)
	case f.KeyFile != "":
		key, err := token.AuthKeyFromFile(f.KeyFile)
		if err != nil {
			return App{}, fmt.Errorf("pushnotify: app %s: key file %s: %w", f.BundleID, f.KeyFile, err)
		}
		app.AuthKey = key
	case f.CertificateFile != "":
		var (
			cert tls.Certificate
			err  error
		)
		switch strings.ToLower(filepath.Ext(f.CertificateFile)) {
		case ".p12", ".pfx":
			cert, err = certificate.FromP12File(f.CertificateFile, f.CertificatePassword)
			var pathErr *fs.PathError
			if err != nil && !errors.As(err, &pathErr) && !strings.Contains(err.Error(), "password") {
				// Go reads the legacy .p12 format only (SHA-1 MAC, 3DES or
				// RC2), not what OpenSSL 3 writes by default (AES, SHA-256).
				err = fmt.Errorf("%w; convert it to .pem: openssl pkcs12 -in %s -out %s -nodes -legacy",
					err, filepath.Base(f.CertificateFile), strings.TrimSuffix(filepath.Base(f.CertificateFile), filepath.Ext(f.CertificateFile))+".pem")
			}
		default:
			cert, err = certificate.FromPemFile(f.CertificateFile, f.CertificatePassword)
		}
		if err != nil {
			return App{}, fmt.Errorf("pushnotify: app %s: certificate %s: %w", f.BundleID, f.CertificateFile, err)
		}
		app.Certificate = &cert
	}
	return app, nil
}

func (a App) hasCredentials() bool { return a.AuthKey != nil || a.Certificate != nil }

// certificate returns the leaf of the app's client certificate, nil with
// token auth.
func (a App) certificate() *x509.Certificate {
	if a.Certificate == nil || len(a.Certificate.Certificate) == 0 {
		return nil
	}
	if a.Certificate.Leaf != nil {
		return a.Certificate.Leaf
	}
	leaf, err := x509.ParseCertificate(a.Certificate.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

func (a App) validate() error {
	if a.BundleID == "" {
		return errors.New("pushnotify: app without bundle id")
	}
	if a.AuthKey != nil && (a.TeamID == "" || a.KeyID == "") {
		return fmt.Errorf("pushnotify: app %s: token auth needs a team id and a key id", a.BundleID)
	}
	return nil
}
