package main

import (
	"github.com/jinglepush/jinglepush/sessions"

	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jinglepush/jinglepush/pushnotify"
)

// Validate reports every problem of c at once (errors.Join, one per line,
// each naming its key). Load has already called it; the *_file secrets are
// checked by Load, which reads them.
func (c Config) Validate() error { return errors.Join(c.check()...) }

// A problem is one thing wrong with the configuration.
type problem struct {
	key   string // "xmpp.domain", "apns.apps[0].key_file", a variable, or file:line:col
	msg   string // never holds a secret
	stage stage
	err   error // the cause, for errors.Is (fs.ErrNotExist); may be nil
}

type stage int

const (
	stageParse  stage = iota // the file is not TOML
	stageDecode              // an unknown key or variable, or a value of the wrong type
	stageValue               // a well-typed value that is not acceptable
)

func (p *problem) Error() string { return p.key + ": " + p.msg }
func (p *problem) Unwrap() error { return p.err }

// sectionRank orders problems by section, in file order, so that
// check-config lists them as the file reads; others come last.
func sectionRank(err error) int {
	p, ok := err.(*problem)
	if !ok {
		return len(sections())
	}
	key := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(p.key, `"`), envPrefix))
	section, _, _ := strings.Cut(key, ".")
	section, _, _ = strings.Cut(section, "_")
	section, _, _ = strings.Cut(section, "[")
	if i := slices.Index(sections(), section); i >= 0 {
		return i
	}
	return len(sections())
}

// related tells whether one key is the other or lies inside it.
func related(a, b string) bool {
	inside := func(k, outer string) bool {
		return strings.HasPrefix(k, outer+".") || strings.HasPrefix(k, outer+"[")
	}
	return a == b || inside(a, b) || inside(b, a)
}

// mentions tells whether msg names key as a whole: not "xmpp.secret" in
// "xmpp.secret_file", nor "log" in "xmpp.log_xml".
func mentions(msg, key string) bool {
	for i := 0; ; {
		j := strings.Index(msg[i:], key)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(key)
		before := start == 0 || !isKeyByte(msg[start-1]) && msg[start-1] != '.'
		after := end == len(msg) || !isKeyByte(msg[end]) && !(msg[end] == '.' && end+1 < len(msg) && isKeyByte(msg[end+1]))
		if before && after {
			return true
		}
		i = start + 1
	}
}

func isKeyByte(b byte) bool {
	return b == '_' || b == '[' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9'
}

// problems collects what check finds.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &problem{key: key, msg: fmt.Sprintf(format, args...), stage: stageValue})
}

func (p *problems) file(key, path string) {
	if path == "" {
		return
	}
	if err := checkFile(path); err != nil {
		*p = append(*p, &problem{key: key, msg: err.Error(), stage: stageValue, err: err})
	}
}

func (p *problems) atLeast(key string, n, least int) {
	if n < least {
		p.add(key, "must be at least %d", least)
	}
}

func (p *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be more than 0s")
	}
}

func (p *problems) oneOf(key, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		p.add(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
}

// hostPort checks "host:port"; for a listen address the host may be empty
// (every interface) and the port 0 (any free port).
func (p *problems) hostPort(key, s string, listen bool) {
	host, port, err := net.SplitHostPort(s)
	n, perr := strconv.Atoi(port)
	switch {
	case err != nil:
		p.add(key, "%q is not host:port", s)
	case host == "" && !listen:
		p.add(key, "%q has no host", s)
	case perr != nil || n < 0 || n > 65535 || (n == 0 && !listen):
		p.add(key, "%q has no valid port", s)
	}
}

// secret checks a secret set inline or by file: not both, and one of them
// when required. Load reads the file into the Secret afterwards.
func (p *problems) secret(key, fileKey string, s Secret, file string, fromFile, required bool) {
	switch {
	case s != "" && file != "" && !fromFile:
		p.add(key, "set %s or %s, not both", key, fileKey)
	case required && s == "" && file == "":
		p.add(key, "must be set (or %s)", fileKey)
	}
}

func (c Config) check() []error {
	var p problems
	c.XMPP.check(&p)
	c.Redis.check(&p)
	c.APNs.check(&p)
	c.Calls.check(&p)
	p.atLeast("registration.max_devices", c.Registration.MaxDevices, 1)
	checkFormat(&p, "alerts.incoming", c.Alerts.Incoming, 1)
	checkFormat(&p, "alerts.missed", c.Alerts.Missed, 1)
	checkFormat(&p, "alerts.message", c.Alerts.Message, 0)
	if c.HTTP.Listen != "" {
		p.hostPort("http.listen", c.HTTP.Listen, true)
	}
	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")
	return p
}

func (x XMPPConfig) check(p *problems) {
	p.hostPort("xmpp.server", x.Server, false)
	switch {
	case x.Domain == "":
		p.add("xmpp.domain", "must be set")
	case !validDomain(x.Domain):
		p.add("xmpp.domain", "%q is not a domain name", x.Domain)
	}
	p.secret("xmpp.secret", "xmpp.secret_file", x.Secret, x.SecretFile, x.secretFromFile, true)
	if len(x.ServedDomains) == 0 {
		p.add("xmpp.served_domains", "must list at least one domain")
	}
	for i, d := range x.ServedDomains {
		key := fmt.Sprintf("xmpp.served_domains[%d]", i)
		switch {
		case !validDomain(d):
			p.add(key, "%q is not a domain name", d)
		case strings.EqualFold(d, x.Domain):
			p.add(key, "%q is xmpp.domain, the component itself", d)
		case slices.ContainsFunc(x.ServedDomains[:i], func(e string) bool { return strings.EqualFold(e, d) }):
			p.add(key, "%q is listed twice", d)
		}
	}
	p.positive("xmpp.reconnect_min", x.ReconnectMin)
	if x.ReconnectMin > 0 && x.ReconnectMax < x.ReconnectMin {
		p.add("xmpp.reconnect_max", "must be at least xmpp.reconnect_min (%s)", x.ReconnectMin)
	}
	if x.Keepalive < 0 {
		p.add("xmpp.keepalive", "%s", errNegative)
	}
	p.atLeast("xmpp.workers", x.Workers, 1)
	p.atLeast("xmpp.queue_size", x.QueueSize, 1)
	p.atLeast("xmpp.max_stanza_size", x.MaxStanzaSize, 1024)
	p.positive("xmpp.drain_timeout", x.DrainTimeout)
	if x.DrainTimeout > shutdownTimeout/2 {
		p.add("xmpp.drain_timeout", "must be at most %s: the whole shutdown takes %s at most", shutdownTimeout/2, shutdownTimeout)
	}
}

func (r RedisConfig) check(p *problems) {
	if len(r.Addrs) == 0 {
		p.add("redis.addrs", "must list at least one address")
	}
	for i, a := range r.Addrs {
		key := fmt.Sprintf("redis.addrs[%d]", i)
		if slices.Contains(r.Addrs[:i], a) {
			p.add(key, "%q is listed twice", a)
		} else {
			p.hostPort(key, a, false)
		}
	}
	p.secret("redis.password", "redis.password_file", r.Password, r.PasswordFile, r.passwordFromFile, false)
	if r.Username != "" && r.Password == "" && r.PasswordFile == "" {
		p.add("redis.username", "needs redis.password or redis.password_file")
	}
	switch {
	case r.DB < 0:
		p.add("redis.db", "must not be negative")
	case r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "":
		p.add("redis.db", "must be 0 with several redis.addrs (Redis Cluster has only database 0)")
	}
	if strings.ContainsAny(r.KeyPrefix, "{}") {
		p.add("redis.key_prefix", "must not hold { or }: keys are hash-tagged by account")
	}
	p.positive("redis.dial_timeout", r.DialTimeout)
	p.positive("redis.timeout", r.Timeout)
	p.atLeast("redis.pool_size", r.PoolSize, 0)

	if strings.TrimSpace(r.MasterName) != r.MasterName || strings.ContainsFunc(r.MasterName, unicode.IsControl) {
		p.add("redis.master_name", "must not hold spaces at its ends or control characters")
	}
	sentinelAuth := r.SentinelUsername != "" || r.SentinelPassword != "" || r.SentinelPasswordFile != ""
	if r.MasterName == "" && sentinelAuth {
		p.add("redis.master_name", "must be set for redis.sentinel_username or redis.sentinel_password: they apply to Sentinels only")
	}
	p.secret("redis.sentinel_password", "redis.sentinel_password_file", r.SentinelPassword, r.SentinelPasswordFile, r.sentinelPasswordFromFile, false)
	if r.SentinelUsername != "" && r.SentinelPassword == "" && r.SentinelPasswordFile == "" {
		p.add("redis.sentinel_username", "needs redis.sentinel_password or redis.sentinel_password_file")
	}
	p.positive("redis.cluster_refresh", r.ClusterRefresh)
}

func (a APNsConfig) check(p *problems) {
	if a.Endpoint != "" {
		// The URL is not quoted back: it could carry credentials.
		u, err := url.Parse(a.Endpoint)
		switch {
		case err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "":
			p.add("apns.endpoint", "must be an https URL such as https://api.sandbox.push.apple.com")
		case u.User != nil:
			p.add("apns.endpoint", "must not hold a user or password")
		case u.RawQuery != "" || u.Fragment != "":
			p.add("apns.endpoint", "must not have a query or fragment")
		}
	}
	if a.CAFile != "" {
		if err := checkFile(a.CAFile); err != nil {
			p.add("apns.ca_file", "%v", err)
		} else if pem, err := os.ReadFile(a.CAFile); err != nil || !x509.NewCertPool().AppendCertsFromPEM(pem) {
			p.add("apns.ca_file", "%s holds no PEM certificate", a.CAFile)
		}
	}
	p.atLeast("apns.workers", a.Workers, 1)
	p.atLeast("apns.queue_size", a.QueueSize, 1)
	p.atLeast("apns.max_inflight", a.MaxInflight, 1)
	p.positive("apns.timeout", a.Timeout)
	p.positive("apns.retry_min", a.RetryMin)
	if a.RetryMin > 0 && a.RetryMax < a.RetryMin {
		p.add("apns.retry_max", "must be at least apns.retry_min (%s)", a.RetryMin)
	}
	if len(a.Apps) == 0 {
		p.add("apns.apps", "at least one [[apns.apps]] entry is required")
	}
	for i, app := range a.Apps {
		key := fmt.Sprintf("apns.apps[%d]", i)
		app.check(p, key, a.DryRun)
		if app.BundleID != "" && slices.ContainsFunc(a.Apps[:i], func(o AppConfig) bool { return strings.EqualFold(o.BundleID, app.BundleID) }) {
			p.add(key+".bundle_id", "%q is configured twice", app.BundleID)
		}
	}
}

var (
	bundleIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$`)
	appleIDPattern  = regexp.MustCompile(`^[A-Z0-9]{10}$`)
)

func (a AppConfig) check(p *problems, key string, dryRun bool) {
	switch {
	case a.BundleID == "":
		p.add(key+".bundle_id", "must be set")
	case !bundleIDPattern.MatchString(a.BundleID):
		p.add(key+".bundle_id", "%q is not a bundle ID (letters, digits, hyphens and dots)", a.BundleID)
	case strings.HasSuffix(strings.ToLower(a.BundleID), ".voip"):
		p.add(key+".bundle_id", "%q: give the app's bundle ID; VoIP pushes add .voip themselves", a.BundleID)
	}
	p.oneOf(key+".environment", a.Environment, pushnotify.Production, pushnotify.Sandbox)

	token := a.TeamID != "" || a.KeyID != "" || a.KeyFile != ""
	cert := a.CertificateFile != ""
	switch {
	case token && cert:
		p.add(key, "use token auth (team_id, key_id, key_file) or certificate auth (certificate_file), not both")
	case !token && !cert && !dryRun:
		p.add(key, "needs credentials: team_id, key_id and key_file (token auth) or certificate_file (certificate auth); only apns.dry_run = true runs without")
	}
	if token {
		for _, id := range []struct{ name, value string }{{"team_id", a.TeamID}, {"key_id", a.KeyID}} {
			switch {
			case id.value == "":
				p.add(key+"."+id.name, "must be set for token auth (team_id, key_id and key_file go together)")
			case !appleIDPattern.MatchString(id.value):
				p.add(key+"."+id.name, "%q must be 10 characters A-Z or 0-9", id.value)
			}
		}
		if a.KeyFile == "" {
			p.add(key+".key_file", "must be set for token auth (team_id, key_id and key_file go together)")
		}
		p.file(key+".key_file", a.KeyFile)
	}
	if cert {
		if ext := strings.ToLower(filepath.Ext(a.CertificateFile)); ext != ".p12" && ext != ".pem" {
			p.add(key+".certificate_file", "must be a .p12 or .pem file")
		}
		p.file(key+".certificate_file", a.CertificateFile)
	}
	if !cert && (a.CertificatePassword != "" || a.CertificatePasswordFile != "") {
		p.add(key+".certificate_password", "only applies with certificate_file")
	}
	p.secret(key+".certificate_password", key+".certificate_password_file", a.CertificatePassword, a.CertificatePasswordFile, a.passwordFromFile, false)
}

// maxRingTimeout bounds calls.ring_timeout: nobody lets a phone ring longer.
const maxRingTimeout = 10 * time.Minute

func (c CallsConfig) check(p *problems) {
	p.positive("calls.ring_timeout", c.RingTimeout)
	if c.RingTimeout > maxRingTimeout {
		p.add("calls.ring_timeout", "must be at most %s", strings.TrimSuffix(maxRingTimeout.String(), "0s"))
	}
	p.positive("calls.stale_after", c.StaleAfter)
	if c.Grace < 0 {
		p.add("calls.grace", "%s", errNegative)
	}
	switch {
	case c.PublishHold < 0:
		p.add("calls.publish_hold", "%s", errNegative)
	case c.RingTimeout > 0 && c.PublishHold > c.RingTimeout:
		p.add("calls.publish_hold", "must be at most calls.ring_timeout (%s)", c.RingTimeout)
	}
	// Both are cut to the ring time where it is shorter (sessions).
	p.positive("calls.publish_window", c.PublishWindow)
	p.positive("calls.lease", c.Lease)
	p.positive("calls.fail_open_after", c.FailOpenAfter)
	if c.TraceTTL < 0 {
		p.add("calls.trace_ttl", "%s", errNegative)
	}
	p.oneOf("calls.ring_from", c.RingFrom, sessions.RingFromAnyone, sessions.RingFromContacts)
	p.positive("calls.stranger_alert_window", c.StrangerAlertWindow)
	p.positive("calls.roster_ttl", c.RosterTTL)
	for _, l := range []struct {
		key string
		n   int
	}{
		{"calls.max_ringing", c.MaxRinging}, {"calls.max_ringing_per_domain", c.MaxRingingPerDomain},
		{"calls.caller_callee_per_minute", c.CallerCalleePerMinute}, {"calls.caller_per_minute", c.CallerPerMinute},
		{"calls.domain_per_minute", c.DomainPerMinute},
	} {
		p.atLeast(l.key, l.n, 0)
	}
}

// checkFormat checks an alert text for fmt.Sprintf: exactly want "%s" verbs
// and no other verb but "%%".
func checkFormat(p *problems, key, s string, want int) {
	if s == "" {
		p.add(key, "must be set")
		return
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		i++
		switch {
		case i < len(s) && s[i] == '%':
		case i < len(s) && s[i] == 's':
			n++
		default:
			p.add(key, "may hold no %% verb but %%s (write %%%% for a percent sign)")
			return
		}
	}
	if n != want {
		if want == 0 {
			p.add(key, "must not hold %%s")
		} else {
			p.add(key, "must hold %%s exactly once, for the caller")
		}
	}
}

// validDomain accepts a DNS-style domain: dot-separated labels of letters
// (any script), digits and inner hyphens, no trailing dot.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' {
				return false
			}
		}
	}
	return true
}
