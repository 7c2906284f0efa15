package pushnotify

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/sideshow/apns2/token"
)

// client returns the client of one app in one environment (nil for an app
// that is not configured, or in dry runs).
func (s *Sender) client(k clientKey) *client { return (*s.clients.Load())[k] }

// buildClients makes the clients of apps, one per app and environment
// (none in dry runs). A client of old whose credentials are the app's is
// kept as it is, connection and JWT included: a reload that changes one
// app leaves the others' connections alone. changed names the apps that
// got new clients.
func (s *Sender) buildClients(apps []App, old map[clientKey]*client) (map[clientKey]*client, []string, error) {
	out := make(map[clientKey]*client)
	if s.cfg.DryRun {
		return out, nil, nil
	}
	signers := make(map[string]*signer) // one JWT per signing key
	var changed []string
	for i := range apps {
		app := &apps[i]
		if !app.hasCredentials() {
			return nil, nil, fmt.Errorf("pushnotify: app %s has no credentials (set a key or a certificate, or dry_run)", app.BundleID)
		}
		var g *signer
		if app.AuthKey != nil {
			id := app.TeamID + "/" + app.KeyID
			if g = signers[id]; g == nil {
				g = oldSigner(old, app)
				if g == nil {
					g = &signer{tok: &token.Token{AuthKey: app.AuthKey, KeyID: app.KeyID, TeamID: app.TeamID}}
				}
				signers[id] = g
			} else if !g.tok.AuthKey.Equal(app.AuthKey) {
				return nil, nil, fmt.Errorf("pushnotify: app %s: key id %s of team %s names two different keys", app.BundleID, app.KeyID, app.TeamID)
			}
		}
		fresh := false
		for _, env := range []string{Production, Sandbox} {
			k := clientKey{app.BundleID, env}
			if c := old[k]; c != nil && c.signer == g && sameCertificate(c.apns.Certificate.Certificate, app) {
				out[k] = c
				continue
			}
			out[k] = s.newClient(k, app, g)
			fresh = true
		}
		if fresh && old != nil {
			changed = append(changed, app.BundleID)
		}
	}
	return out, changed, nil
}

// oldSigner finds the signer of a running client that signs with app's
// key: its JWT stays valid, and renewing it early would earn
// TooManyProviderTokenUpdates.
func oldSigner(old map[clientKey]*client, app *App) *signer {
	for _, c := range old {
		if g := c.signer; g != nil && g.tok.TeamID == app.TeamID && g.tok.KeyID == app.KeyID && g.tok.AuthKey.Equal(app.AuthKey) {
			return g
		}
	}
	return nil
}

func sameCertificate(chain [][]byte, app *App) bool {
	var want [][]byte
	if app.Certificate != nil {
		want = app.Certificate.Certificate
	}
	if len(chain) == 0 || len(want) == 0 {
		return len(chain) == len(want)
	}
	return bytes.Equal(chain[0], want[0])
}

// showCredentials publishes what an app authenticates with, and for a
// certificate, when it expires.
func (s *Sender) showCredentials(app *App) {
	s.m.credentials.DeletePartialMatch(map[string]string{"bundle_id": app.BundleID})
	auth, keyID, serial := "none", "", ""
	switch {
	case app.AuthKey != nil:
		auth, keyID = "token", app.KeyID
	case app.Certificate != nil:
		auth = "certificate"
		if leaf := app.certificate(); leaf != nil {
			serial = fmt.Sprintf("%x", leaf.SerialNumber)
		}
	}
	s.m.credentials.WithLabelValues(app.BundleID, auth, keyID, serial).Set(1)
	if !s.cfg.DryRun {
		s.checkCertificate(app)
	}
}

// Reload puts new credentials (a rotated signing key, a renewed
// certificate) and alert texts in place without stopping: pushes from now
// on, retries included, use them, and requests in flight finish on the
// connections they started on. apps must be apps the Sender runs, by
// bundle id; an app left out keeps its credentials. An app whose
// credentials did not change keeps its connection and its JWT. Either
// everything is taken or, on error, nothing: the running credentials stay.
func (s *Sender) Reload(apps []App, alerts Alerts) error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	old := *s.clients.Load()
	next := make([]App, 0, len(s.running))
	given := make(map[string]App, len(apps))
	for _, a := range apps {
		if _, ok := s.apps[a.BundleID]; !ok {
			return fmt.Errorf("pushnotify: reload: app %s is not running (adding an app needs a restart)", a.BundleID)
		}
		if err := a.validate(); err != nil {
			return fmt.Errorf("pushnotify: reload: %w", err)
		}
		given[a.BundleID] = a
	}
	for _, run := range s.running {
		if a, ok := given[run.BundleID]; ok {
			run.TeamID, run.KeyID, run.AuthKey, run.Certificate = a.TeamID, a.KeyID, a.AuthKey, a.Certificate
		}
		next = append(next, run)
	}
	clients, changed, err := s.buildClients(next, old)
	if err != nil {
		return fmt.Errorf("pushnotify: reload: %w", err)
	}

	alerts = alerts.withDefaults()
	s.alerts.Store(&alerts)
	s.running = next
	s.clients.Store(&clients)
	for k, c := range clients {
		if old[k] != c {
			for _, kind := range topicKinds {
				s.unhealthy(c, kind).Set(0) // fresh credentials: healthy until APNs says otherwise
			}
		}
	}
	for i := range s.running {
		s.showCredentials(&s.running[i])
	}
	// The old connections close once their requests are done: none lasts
	// longer than the request timeout.
	for k, c := range old {
		if clients[k] != c {
			time.AfterFunc(s.cfg.Timeout+time.Second, c.closeIdle)
		}
	}
	if len(changed) > 0 {
		sort.Strings(changed)
		s.log.Info("APNs credentials reloaded", "apps", changed)
	}
	return nil
}
