package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// TestFixtures loads every testdata/*.toml. A fixture with "# want: …" lines
// must fail with one error in which each want is a substring of some line and
// each line matches some want (no problem goes unexpected); "# not: …" lines
// must appear nowhere. A fixture without wants must load and validate.
func TestFixtures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			wants, nots := fixtureExpectations(t, file)
			c, err := Load(file, nil)
			if len(wants) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded; want errors:\n%s", strings.Join(wants, "\n"))
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Load returned a Config with its error")
			}
			msg := err.Error()
			lines := strings.Split(msg, "\n")
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, line := range lines {
				if !containsAny(line, wants) {
					t.Errorf("unexpected problem %q", line)
				}
			}
			for _, n := range nots {
				if strings.Contains(msg, n) {
					t.Errorf("error holds %q", n)
				}
			}
			if t.Failed() {
				t.Logf("the error was:\n%s", msg)
			}
		})
	}
}

func fixtureExpectations(t *testing.T, file string) (wants, nots []string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			wants = append(wants, w)
		}
		if n, ok := strings.CutPrefix(line, "# not: "); ok {
			nots = append(nots, n)
		}
	}
	return wants, nots
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestDefaults spells out every default, independently of defaults().
func TestDefaults(t *testing.T) {
	t.Parallel()
	got, err := Load("testdata/good-minimal.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		XMPP: XMPPConfig{
			Server:        "127.0.0.1:5347",
			Domain:        "push.example.com",
			Secret:        "minimal-secret",
			ServedDomains: []string{"example.com"},
			ReconnectMin:  500 * time.Millisecond,
			ReconnectMax:  30 * time.Second,
			Keepalive:     60 * time.Second,
			Workers:       8,
			QueueSize:     1024,
			MaxStanzaSize: 65536,
			LogXML:        false,
			DrainTimeout:  5 * time.Second,
		},
		Redis: RedisConfig{
			Addrs:       []string{"127.0.0.1:6379"},
			DB:          0,
			KeyPrefix:   "jinglepush:",
			DialTimeout: 2 * time.Second,
			Timeout:     time.Second,
			PoolSize:    0,

			ClusterRefresh: time.Second,
		},
		APNs: APNsConfig{
			Endpoint:    "",
			CAFile:      "",
			DryRun:      true,
			Workers:     16,
			QueueSize:   10000,
			MaxInflight: 100,
			Timeout:     10 * time.Second,
			RetryMin:    200 * time.Millisecond,
			RetryMax:    5 * time.Second,
			Apps:        []AppConfig{{BundleID: "com.example.chat", Environment: "production"}},
		},
		Calls: CallsConfig{
			RingTimeout:   45 * time.Second,
			StaleAfter:    30 * time.Second,
			WakeOnPublish: true,
			Grace:         60 * time.Second,
			PublishHold:   2 * time.Second,
			PublishWindow: 10 * time.Second,
			Lease:         5 * time.Second,
			FailOpenAfter: 2 * time.Second,
			TraceTTL:      15 * time.Minute,

			RingFrom:              "anyone",
			StrangerAlertWindow:   10 * time.Minute,
			RosterTTL:             2 * time.Minute,
			OneCallPerCaller:      true,
			MaxRinging:            4,
			MaxRingingPerDomain:   2,
			CallerCalleePerMinute: 3,
			CallerPerMinute:       20,
			DomainPerMinute:       200,
		},
		Registration: RegistrationConfig{MaxDevices: 10},
		Alerts: AlertsConfig{
			Incoming: "Incoming call from %s",
			Missed:   "Missed call from %s",
			Message:  "New message",
		},
		HTTP: HTTPConfig{Listen: "127.0.0.1:9110"},
		Log:  LogConfig{Level: "info", Format: "text"},
	}
	assertConfig(t, got, want)
}

// TestEveryKey decodes a file that sets every key to a non-default value.
func TestEveryKey(t *testing.T) {
	t.Parallel()
	got, err := Load("testdata/good-full.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string) string { return filepath.Join("testdata", "files", name) }
	want := Config{
		XMPP: XMPPConfig{
			Server:         "xmpp.internal:5275",
			Domain:         "push.example.com",
			Secret:         "file-xmpp-secret",
			SecretFile:     file("xmpp-secret"),
			ServedDomains:  []string{"example.com", "example.org", "пример.рф"},
			ReconnectMin:   time.Second,
			ReconnectMax:   2 * time.Minute,
			Keepalive:      0,
			Workers:        4,
			QueueSize:      64,
			MaxStanzaSize:  131072,
			LogXML:         true,
			DrainTimeout:   3 * time.Second,
			secretFromFile: true,
		},
		Redis: RedisConfig{
			Addrs:            []string{"10.0.0.1:6379", "10.0.0.2:6379", "[fd00::3]:6379"},
			Password:         "file-redis-password",
			PasswordFile:     file("redis-password"),
			Username:         "jinglepush",
			KeyPrefix:        "jp:",
			DialTimeout:      5 * time.Second,
			Timeout:          500 * time.Millisecond,
			PoolSize:         32,
			passwordFromFile: true,

			MasterName:               "jinglepush-master",
			SentinelUsername:         "sentinel-user",
			SentinelPassword:         "file-sentinel-password",
			SentinelPasswordFile:     file("sentinel-password"),
			ClusterRefresh:           5 * time.Second,
			sentinelPasswordFromFile: true,
		},
		APNs: APNsConfig{
			Endpoint:    "https://apns.test:8443",
			CAFile:      file("ca.pem"),
			LogBodies:   true,
			Workers:     4,
			QueueSize:   100,
			MaxInflight: 10,
			Timeout:     3 * time.Second,
			RetryMin:    time.Second,
			RetryMax:    time.Minute,
			Apps: []AppConfig{{
				BundleID:    "com.example.chat",
				Environment: "sandbox",
				TeamID:      "ABCDE12345",
				KeyID:       "KEY1234567",
				KeyFile:     file("AuthKey_ABCDE12345.p8"),
			}, {
				BundleID:                "com.example.other",
				Environment:             "production",
				CertificateFile:         file("voip.p12"),
				CertificatePassword:     "file-cert-password",
				CertificatePasswordFile: file("cert-password"),
				passwordFromFile:        true,
			}, {
				BundleID:            "org.example.third",
				Environment:         "production",
				CertificateFile:     file("voip.pem"),
				CertificatePassword: "inline-cert-password",
			}},
		},
		Calls: CallsConfig{
			RingTimeout:         time.Minute,
			StaleAfter:          10 * time.Second,
			PublishWindow:       20 * time.Second,
			Lease:               3 * time.Second,
			FailOpenAfter:       time.Second,
			RingFrom:            "contacts",
			StrangerAlertWindow: time.Hour,
			RosterTTL:           time.Minute,
			MaxRingingPerDomain: 1,
			CallerPerMinute:     5,
		},
		Registration: RegistrationConfig{MaxDevices: 3},
		Alerts: AlertsConfig{
			Incoming: "%s ruft an",
			Missed:   "Verpasster Anruf von %s (100%%)",
			Message:  "Neue Nachricht",
		},
		HTTP: HTTPConfig{Pprof: true},
		Log:  LogConfig{Level: "debug", Format: "json"},
	}
	assertConfig(t, got, want)
}

// assertConfig compares two configs; String hides secrets, so they are
// compared on their own.
func assertConfig(t *testing.T, got, want Config) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	t.Errorf("config differs:\n%s", diffLines(got.String(), want.String()))
	secrets := func(c Config) []string {
		s := []string{string(c.XMPP.Secret), string(c.Redis.Password)}
		for _, a := range c.APNs.Apps {
			s = append(s, string(a.CertificatePassword))
		}
		return s
	}
	if g, w := secrets(got), secrets(want); !reflect.DeepEqual(g, w) {
		t.Errorf("secrets: got %q, want %q", g, w)
	}
}

func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "got  %s\nwant %s\n", gl, wl)
		}
	}
	return b.String()
}

// base is a valid file for tests that change one thing.
const base = `
[xmpp]
domain = "push.example.com"
secret = "file-secret"
served_domains = ["example.com"]

[apns]
dry_run = true

[[apns.apps]]
bundle_id = "com.example.chat"
`

func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, t.TempDir(), base)
	tests := []struct {
		name    string
		environ []string
		check   func(t *testing.T, c Config)
	}{{
		name: "scalars",
		environ: []string{
			"JINGLEPUSH_XMPP_DOMAIN=Push.Other.ORG",
			"JINGLEPUSH_XMPP_SECRET=env-secret",
			"JINGLEPUSH_XMPP_WORKERS= 4 ",
			"JINGLEPUSH_XMPP_LOG_XML=true",
			"JINGLEPUSH_CALLS_RING_TIMEOUT=30s",
			"JINGLEPUSH_CALLS_WAKE_ON_PUBLISH=false",
			"JINGLEPUSH_REDIS_DB=3",
			"JINGLEPUSH_HTTP_LISTEN=",
			"JINGLEPUSH_LOG_LEVEL=debug",
			"JINGLEPUSH_ALERTS_MISSED=Verpasst: %s",
		},
		check: func(t *testing.T, c Config) {
			if c.XMPP.Domain != "push.other.org" || c.XMPP.Secret != "env-secret" || c.XMPP.Workers != 4 || !c.XMPP.LogXML {
				t.Errorf("xmpp: %+v", c.XMPP)
			}
			if c.Calls.RingTimeout != 30*time.Second || c.Calls.WakeOnPublish {
				t.Errorf("calls: %+v", c.Calls)
			}
			if c.Redis.DB != 3 || c.HTTP.Listen != "" || c.Log.Level != "debug" || c.Alerts.Missed != "Verpasst: %s" {
				t.Errorf("redis.db %d, http.listen %q, log.level %q, alerts.missed %q", c.Redis.DB, c.HTTP.Listen, c.Log.Level, c.Alerts.Missed)
			}
		},
	}, {
		name:    "lists split on commas and spaces",
		environ: []string{"JINGLEPUSH_REDIS_ADDRS=10.0.0.1:7000,10.0.0.2:7000  10.0.0.3:7000, ", "JINGLEPUSH_XMPP_SERVED_DOMAINS=A.example b.example"},
		check: func(t *testing.T, c Config) {
			if want := []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}; !reflect.DeepEqual(c.Redis.Addrs, want) {
				t.Errorf("redis.addrs = %q, want %q", c.Redis.Addrs, want)
			}
			if want := []string{"a.example", "b.example"}; !reflect.DeepEqual(c.XMPP.ServedDomains, want) {
				t.Errorf("xmpp.served_domains = %q, want %q", c.XMPP.ServedDomains, want)
			}
		},
	}, {
		name: "apps: change an entry and add one",
		environ: []string{
			"JINGLEPUSH_APNS_APPS_1_BUNDLE_ID=com.example.two",
			"JINGLEPUSH_APNS_APPS_0_ENVIRONMENT=sandbox",
			"JINGLEPUSH_APNS_APPS_1_ENVIRONMENT=sandbox",
			"JINGLEPUSH_APNS_APPS_2_BUNDLE_ID=com.example.three",
		},
		check: func(t *testing.T, c Config) {
			want := []AppConfig{
				{BundleID: "com.example.chat", Environment: "sandbox"},
				{BundleID: "com.example.two", Environment: "sandbox"},
				{BundleID: "com.example.three", Environment: "production"},
			}
			if !reflect.DeepEqual(c.APNs.Apps, want) {
				t.Errorf("apps = %+v, want %+v", c.APNs.Apps, want)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			environ := append([]string{"PATH=/usr/bin", "HOME=/root"}, tt.environ...)
			c, err := Load(path, environ)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

// TestEnvOnly runs with no file at all: every key from the environment.
func TestEnvOnly(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{
		"JINGLEPUSH_XMPP_DOMAIN=push.example.com",
		"JINGLEPUSH_XMPP_SECRET=s",
		"JINGLEPUSH_XMPP_SERVED_DOMAINS=example.com",
		"JINGLEPUSH_APNS_DRY_RUN=1",
		"JINGLEPUSH_APNS_APPS_0_BUNDLE_ID=com.example.chat",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.XMPP.Domain != "push.example.com" || !c.APNs.DryRun || len(c.APNs.Apps) != 1 || c.APNs.Apps[0].Environment != "production" {
		t.Errorf("got %s", c)
	}
}

// TestEnvUnset: a key the file leaves out still takes its environment value
// (spf13/viper#761), and an empty value is a value, here clearing the file's
// secret in favour of a secret file.
func TestEnvUnset(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeConfig(t, dir, base)
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{
		"JINGLEPUSH_XMPP_SECRET=",
		"JINGLEPUSH_XMPP_SECRET_FILE=secret",
		"JINGLEPUSH_APNS_MAX_INFLIGHT=7",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.XMPP.Secret != "from-file" || c.XMPP.SecretFile != filepath.Join(dir, "secret") || c.APNs.MaxInflight != 7 {
		t.Errorf("secret_file %q, max_inflight %d", c.XMPP.SecretFile, c.APNs.MaxInflight)
	}
}

// TestEnvProcessIgnored: Load reads only the environ it is given.
func TestEnvProcessIgnored(t *testing.T) {
	t.Setenv("JINGLEPUSH_XMPP_DOMAIN", "from.process")
	c, err := Load("testdata/good-minimal.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.XMPP.Domain != "push.example.com" {
		t.Errorf("xmpp.domain = %q: taken from the process environment", c.XMPP.Domain)
	}
}

func TestEnvErrors(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, t.TempDir(), base)
	environ := []string{
		"JINGLEPUSH_XMPP_SECRT=env-secret-typo",
		"JINGLEPUSH_XMPP_WORKERS=eight",
		"JINGLEPUSH_XMPP_QUEUE_SIZE=0",
		"JINGLEPUSH_XMPP_DRY_RUN=true",
		"JINGLEPUSH_APNS_DRY_RUN=maybe",
		"JINGLEPUSH_CALLS_RING_TIMEOUT=-5s",
		"JINGLEPUSH_CALLS_STALE_AFTER=soon",
		"JINGLEPUSH_REDIS_ADDRS=127.0.0.1:6379,127.0.0.1:6379",
		"JINGLEPUSH_REDIS=x",
		"JINGLEPUSH_APNS_APPS=com.example.chat",
		"JINGLEPUSH_APNS_APPS_0_BOGUS=x",
		"JINGLEPUSH_APNS_APPS_X_BUNDLE_ID=x",
		"JINGLEPUSH_APNS_APPS_3_BUNDLE_ID=com.example.gap",
		"JINGLEPUSH_APNS_APPS_0_TEAM_ID=short",
		"JINGLEPUSH_LOG_Level=debug",
		// Not config: left alone.
		"JINGLEPUSH_CONFIG=/etc/jinglepush/config.toml",
		"JINGLEPUSH_TEST_SKIP=prosody",
		"JINGLEPUSH_=1",
		"jinglepush_xmpp_secrt=x",
		"JINGLEPUSH_xmpp_secrt=x",
		"NOT_AN_ASSIGNMENT",
		"OTHER=1",
	}
	_, err := Load(path, environ)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	msg := err.Error()
	wants := []string{
		"JINGLEPUSH_XMPP_SECRT: is not a config variable; [xmpp] has SERVER, DOMAIN, SECRET, SECRET_FILE, SERVED_DOMAINS",
		"JINGLEPUSH_XMPP_WORKERS: must be a whole number",
		"xmpp.queue_size (JINGLEPUSH_XMPP_QUEUE_SIZE): must be at least 1",
		"JINGLEPUSH_XMPP_DRY_RUN: is not a config variable",
		"JINGLEPUSH_APNS_DRY_RUN: must be true or false",
		"JINGLEPUSH_CALLS_RING_TIMEOUT: must not be negative",
		`JINGLEPUSH_CALLS_STALE_AFTER: must be a duration such as "45s" or "500ms"`,
		`redis.addrs[1] (JINGLEPUSH_REDIS_ADDRS): "127.0.0.1:6379" is listed twice`,
		"JINGLEPUSH_REDIS: is not a config variable",
		"JINGLEPUSH_APNS_APPS: is not a config variable; set an app's keys as JINGLEPUSH_APNS_APPS_<index>_<KEY>",
		"JINGLEPUSH_APNS_APPS_0_BOGUS: is not a config variable; an app's keys are set as JINGLEPUSH_APNS_APPS_<index>_<KEY>, KEY one of BUNDLE_ID, ENVIRONMENT",
		"JINGLEPUSH_APNS_APPS_X_BUNDLE_ID: is not a config variable",
		"JINGLEPUSH_APNS_APPS_3_BUNDLE_ID: index 3 skips ahead: the next free [[apns.apps]] index is 1",
		`apns.apps[0].team_id (JINGLEPUSH_APNS_APPS_0_TEAM_ID): "short" must be 10 characters A-Z or 0-9`,
		"apns.apps[0].key_id: must be set for token auth",
		"apns.apps[0].key_file: must be set for token auth",
		"JINGLEPUSH_LOG_Level: is not a config variable",
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q", w)
		}
	}
	if lines := strings.Split(msg, "\n"); len(lines) != len(wants) {
		t.Errorf("%d problems, want %d", len(lines), len(wants))
	}
	for _, n := range []string{"CONFIG", "TEST_SKIP", "jinglepush_", "JINGLEPUSH_xmpp", "JINGLEPUSH_:", "OTHER", "NOT_AN", "env-secret-typo"} {
		if strings.Contains(msg, n) {
			t.Errorf("error mentions %q", n)
		}
	}
	if t.Failed() {
		t.Logf("the error was:\n%s", msg)
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content *string // nil: no file; "dir": a directory
		want    string  // the secret, or an error substring
		wantErr bool
	}{
		{name: "newline trimmed", content: ptr("s3cret\n"), want: "s3cret"},
		{name: "CRLF trimmed", content: ptr("s3cret\r\n\r\n"), want: "s3cret"},
		{name: "inner space kept", content: ptr(" a b \n"), want: " a b "},
		{name: "missing", content: nil, want: "xmpp.secret_file: stat ", wantErr: true},
		{name: "empty", content: ptr("\n"), want: "xmpp.secret_file: " + "SECRET" + " is empty", wantErr: true},
		{name: "directory", content: ptr("dir"), want: "is not a regular file", wantErr: true},
		{name: "too large", content: ptr(strings.Repeat("x", maxSecretSize+1)), want: "is larger than 64 KiB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			secret := filepath.Join(dir, "secret")
			switch {
			case tt.content == nil:
			case *tt.content == "dir":
				if err := os.Mkdir(secret, 0o700); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(secret, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			path := writeConfig(t, dir, strings.Replace(base, `secret = "file-secret"`, `secret_file = "secret"`, 1))
			c, err := Load(path, nil)
			want := strings.ReplaceAll(tt.want, "SECRET", secret)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				if tt.content == nil && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("errors.Is(err, fs.ErrNotExist) = false")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(c.XMPP.Secret) != want || c.XMPP.SecretFile != secret {
				t.Errorf("secret %q from %q, want %q from %q", string(c.XMPP.Secret), c.XMPP.SecretFile, want, secret)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate after Load: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestRelativePaths: *_file paths are relative to the config file's
// directory, wherever the process runs; absolute paths stay.
func TestRelativePaths(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"etc/keys/AuthKey_ABCDE12345.p8": "key",
		"etc/ca.pem":                     mustRead(t, "testdata/files/ca.pem"),
		"secret":                         "s\n",
		"abs-password":                   "p\n",
	} {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := fmt.Sprintf(`
[xmpp]
domain = "push.example.com"
secret_file = "../secret"
served_domains = ["example.com"]

[redis]
password_file = %q

[apns]
ca_file = "ca.pem"

[[apns.apps]]
bundle_id = "com.example.chat"
team_id = "ABCDE12345"
key_id = "KEY1234567"
key_file = "keys/AuthKey_ABCDE12345.p8"
`, filepath.Join(root, "abs-password"))
	writeConfig(t, filepath.Join(root, "etc"), config)

	t.Chdir(t.TempDir()) // somewhere else entirely
	c, err := Load(filepath.Join(root, "etc", "config.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"xmpp.secret_file":       filepath.Join(root, "secret"),
		"redis.password_file":    filepath.Join(root, "abs-password"),
		"apns.ca_file":           filepath.Join(root, "etc", "ca.pem"),
		"apns.apps[0].key_file":  filepath.Join(root, "etc", "keys", "AuthKey_ABCDE12345.p8"),
		"xmpp.secret":            "s",
		"redis.password":         "p",
		"apns.apps[0].bundle_id": "com.example.chat",
	}
	got := map[string]string{
		"xmpp.secret_file":       c.XMPP.SecretFile,
		"redis.password_file":    c.Redis.PasswordFile,
		"apns.ca_file":           c.APNs.CAFile,
		"apns.apps[0].key_file":  c.APNs.Apps[0].KeyFile,
		"xmpp.secret":            string(c.XMPP.Secret),
		"redis.password":         string(c.Redis.Password),
		"apns.apps[0].bundle_id": c.APNs.Apps[0].BundleID,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}

	// A relative config path works from its own parent directory too.
	t.Chdir(root)
	c, err = Load(filepath.Join("etc", "config.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("etc", "keys", "AuthKey_ABCDE12345.p8"); c.APNs.Apps[0].KeyFile != want {
		t.Errorf("key_file = %q, want %q", c.APNs.Apps[0].KeyFile, want)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addrs   string
		db      int
		wantErr bool
	}{
		{`["127.0.0.1:6379"]`, 0, false},
		{`["127.0.0.1:6379"]`, 5, false},
		{`["10.0.0.1:7000", "10.0.0.2:7000"]`, 0, false},
		{`["10.0.0.1:7000", "10.0.0.2:7000"]`, 1, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s db %d", tt.addrs, tt.db), func(t *testing.T) {
			t.Parallel()
			text := base + fmt.Sprintf("\n[redis]\naddrs = %s\ndb = %d\n", tt.addrs, tt.db)
			c, err := Load(writeConfig(t, t.TempDir(), text), nil)
			switch {
			case tt.wantErr && (err == nil || !strings.Contains(err.Error(), "redis.db: must be 0 with several redis.addrs")):
				t.Errorf("err = %v, want the cluster error", err)
			case !tt.wantErr && err != nil:
				t.Errorf("err = %v", err)
			case !tt.wantErr && c.Redis.DB != tt.db:
				t.Errorf("redis.db = %d", c.Redis.DB)
			}
		})
	}
}

// TestSampleConfig: the repository's config.toml loads as it is, shows every
// key, and shows each key's default except where it says otherwise.
func TestSampleConfig(t *testing.T) {
	t.Parallel()
	const sample = "../../config.toml"
	c, err := Load(sample, nil)
	if err != nil {
		t.Fatalf("Load(%s): %v", sample, err)
	}
	if c.XMPP.Server != "127.0.0.1:5347" || c.XMPP.Domain != "push.localhost" ||
		!reflect.DeepEqual(c.XMPP.ServedDomains, []string{"localhost"}) || !c.APNs.DryRun ||
		len(c.APNs.Apps) != 1 || c.APNs.Apps[0].BundleID != "com.example.chat" || c.Calls.WakeOnPublish {
		t.Errorf("sample is not the local Prosody setup:\n%s", c)
	}

	var raw map[string]any
	if err := toml.Unmarshal([]byte(mustRead(t, sample)), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range fileKeys {
		if _, ok := lookup(raw, k.name); !ok {
			t.Errorf("sample lacks %s", k.name)
		}
	}
	for _, k := range appKeys {
		if _, ok := lookup(raw, "apns.apps[0]."+k.name); !ok {
			t.Errorf("sample lacks apns.apps[0].%s", k.name)
		}
	}

	notDefault := map[string]bool{"xmpp.domain": true, "xmpp.secret": true, "xmpp.served_domains": true, "apns.dry_run": true,
		"calls.wake_on_publish": true} // off for Prosody, whose guide relies on the firewall copies
	def := defaults()
	defaultValue := map[string]string{}
	walkKeys(reflect.ValueOf(def), "", func(key string, f reflect.Value) { defaultValue[key] = formatValue(f.Interface()) })
	walkKeys(reflect.ValueOf(c), "", func(key string, f reflect.Value) {
		if strings.HasPrefix(key, "apns.apps[") || notDefault[key] {
			return
		}
		if got := formatValue(f.Interface()); got != defaultValue[key] {
			t.Errorf("sample sets %s = %s; the default is %s", key, got, defaultValue[key])
		}
	})
}

// lookup finds "a.b[0].c" in a decoded TOML document.
func lookup(doc map[string]any, key string) (any, bool) {
	var cur any = doc
	for _, part := range strings.Split(key, ".") {
		name, index, isIndex := strings.Cut(strings.TrimSuffix(part, "]"), "[")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[name]; !ok {
			return nil, false
		}
		if isIndex {
			arr, ok := cur.([]any)
			var i int
			if _, err := fmt.Sscan(index, &i); err != nil || !ok || i >= len(arr) {
				return nil, false
			}
			cur = arr[i]
		}
	}
	return cur, true
}

var tomlBlock = regexp.MustCompile("(?ms)^```toml\\s*\n(.*?)^```")

// TestReadmeConfig: every TOML block of README.md uses only real keys with
// values of the right types. Blocks may show placeholders (an empty secret,
// a key file that is not here), so value problems are allowed.
func TestReadmeConfig(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no README.md yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	blocks := tomlBlock.FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Skip("README.md has no TOML block")
	}
	for i, b := range blocks {
		_, err := load(fmt.Sprintf("README.md block %d", i+1), b[1], nil)
		for _, e := range leaves(err) {
			if p, ok := e.(*problem); !ok || p.stage != stageValue {
				t.Errorf("README.md block %d: %v", i+1, e)
			}
		}
	}
}

// TestSecretsNeverShown: no way of printing a loaded config, and no error,
// shows a secret.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/good-full.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.XMPP.Secret = "inline-xmpp-secret" // good-full.toml reads the other two from files
	secrets := []string{"inline-xmpp-secret", "file-redis-password", "file-cert-password", "inline-cert-password"}

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", c, "xmpp", c.XMPP)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", c, "apps", c.APNs.Apps)
	marshalled, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":    c.String(),
		"%v":        fmt.Sprintf("%v", c),
		"%+v":       fmt.Sprintf("%+v", c.XMPP),
		"%#v":       fmt.Sprintf("%#v", c),
		"%s secret": fmt.Sprintf("%s %q %x", c.XMPP.Secret, c.Redis.Password, c.XMPP.Secret),
		"apps %+v":  fmt.Sprintf("%+v", c.APNs.Apps),
		"json":      string(marshalled),
		"slog text": text.String(),
		"slog json": js.String(),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q:\n%s", name, s, out)
			}
		}
	}
	if !strings.Contains(c.String(), "xmpp.secret = <secret>\n") || !strings.Contains(c.String(), "redis.password = <secret>\n") {
		t.Errorf("String does not mark secrets:\n%s", c)
	}

	// Errors: secrets set twice, of the wrong type, in a bad file.
	bad := `
[xmpp]
domain = "push.example.com"
secret = "inline-xmpp-secret"
secret_file = "files/xmpp-secret"
served_domains = ["inline-cert-password"]

[redis]
password = ["inline-redis-password"]

[apns]
endpoint = "https://user:inline-endpoint-password@"
`
	_, err = load("testdata/bad.toml", []byte(bad), []string{"JINGLEPUSH_APNS_APPS_0_CERTIFICATE_PASSWORD=env-cert-password", "JINGLEPUSH_XMPP_SECRT=env-secret-typo"})
	if err == nil {
		t.Fatal("bad config loaded")
	}
	for _, s := range []string{"inline-xmpp-secret", "inline-redis-password", "inline-endpoint-password", "env-cert-password", "env-secret-typo", "file-xmpp-secret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %q:\n%v", s, err)
		}
	}
	_, err = load("testdata/bad.toml", []byte("[xmpp]\nsecret = \"inline-xmpp-secret\n"), nil)
	if err == nil || strings.Contains(err.Error(), "inline-xmpp-secret") {
		t.Errorf("syntax error shows the secret: %v", err)
	}
}

// TestKeysAreDocumented: the keys Load knows are the keys the structs
// declare; a new field cannot miss its default, its variable or its check.
func TestKeysAreDocumented(t *testing.T) {
	t.Parallel()
	var names []string
	for _, k := range fileKeys {
		names = append(names, envPrefix+envName(k.name))
	}
	for _, want := range []string{"JINGLEPUSH_XMPP_SECRET", "JINGLEPUSH_CALLS_RING_TIMEOUT", "JINGLEPUSH_REDIS_ADDRS", "JINGLEPUSH_HTTP_LISTEN", "JINGLEPUSH_LOG_FORMAT", "JINGLEPUSH_APNS_DRY_RUN"} {
		if !containsAny(strings.Join(names, " ")+" ", []string{want + " "}) {
			t.Errorf("no variable %s", want)
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("two keys share the variable %s", n)
		}
		seen[n] = true
	}
}

func TestSlogLevel(t *testing.T) {
	t.Parallel()
	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got := (LogConfig{Level: level}).SlogLevel(); got != want {
			t.Errorf("%s: %v", level, got)
		}
	}
}

// FuzzLoad: no file contents and no environment make Load panic, and what
// Load accepts, Validate accepts and String prints.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, file := range append(files, "../../config.toml") {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "")
	}
	f.Add([]byte(base), "JINGLEPUSH_APNS_APPS_1_BUNDLE_ID=x\nJINGLEPUSH_REDIS_ADDRS=a:1,b:2\nJINGLEPUSH_XMPP_KEEPALIVE=0")
	f.Add([]byte("xmpp = 1\n[apns]\napps = [1, {a = {}}]\n"), "JINGLEPUSH_APNS_APPS_0_BUNDLE_ID=x")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		c, err := load("testdata/fuzz.toml", data, strings.Split(env, "\n"))
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted what Validate refuses: %v", err)
		}
		_ = c.String()
	})
}

func TestMentions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg, key string
		want     bool
	}{
		{"only apns.dry_run = true runs without", "apns.dry_run", true},
		{"must be at least xmpp.reconnect_min (1s)", "xmpp.reconnect_min", true},
		{"ends with calls.ring_timeout", "calls.ring_timeout", true},
		{"ends with calls.ring_timeout.", "calls.ring_timeout", true},
		{"set xmpp.secret_file", "xmpp.secret", false},
		{"see xmpp.log_xml", "log", false},
		{"see xmpp.log", "log", false},
		{"redis.addrs[1] and redis.addrs", "redis.addrs", true},
		{"redis.addrs[1] only", "redis.addrs", false},
		{"redis.addrsx", "redis.addrs", false},
	}
	for _, tt := range tests {
		if got := mentions(tt.msg, tt.key); got != tt.want {
			t.Errorf("mentions(%q, %q) = %v", tt.msg, tt.key, got)
		}
	}
}

// TestEnvCannotHideSection: a section that is not a table is an error even
// when variables set keys inside it (viper would let them shadow it).
func TestEnvCannotHideSection(t *testing.T) {
	t.Parallel()
	doc := "xmpp = 1\n" + strings.Replace(base, "[xmpp]", "[ignored]", 1)
	_, err := load("testdata/hide.toml", []byte(doc), []string{
		"JINGLEPUSH_XMPP_DOMAIN=push.example.com",
		"JINGLEPUSH_XMPP_SECRET=s",
		"JINGLEPUSH_XMPP_SERVED_DOMAINS=example.com",
	})
	want := "xmpp: must be a table, not a whole number\nignored: unknown section"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("err = %v, want %q and nothing else", err, want)
	}
}

// TestEnvAppNames: an app's variable has a plain index and an upper-case
// key, like every other variable.
func TestEnvAppNames(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, t.TempDir(), base)
	for _, name := range []string{"JINGLEPUSH_APNS_APPS_01_BUNDLE_ID", "JINGLEPUSH_APNS_APPS_1_bundle_id", "JINGLEPUSH_APNS_APPS_-1_BUNDLE_ID"} {
		_, err := Load(path, []string{name + "=com.example.two"})
		if want := name + ": is not a config variable"; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
