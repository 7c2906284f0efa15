package main

import (
	"crypto/x509"
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/viper"
)

// Config is the whole configuration file, typed. Load builds it; packages get
// the parts they need, never viper.
type Config struct {
	XMPP         XMPPConfig         `mapstructure:"xmpp"`
	Redis        RedisConfig        `mapstructure:"redis"`
	APNs         APNsConfig         `mapstructure:"apns"`
	Calls        CallsConfig        `mapstructure:"calls"`
	Registration RegistrationConfig `mapstructure:"registration"`
	Alerts       AlertsConfig       `mapstructure:"alerts"`
	HTTP         HTTPConfig         `mapstructure:"http"`
	Log          LogConfig          `mapstructure:"log"`
}

// XMPPConfig is [xmpp]: the component stream.
type XMPPConfig struct {
	Server        string        `mapstructure:"server"`
	Domain        string        `mapstructure:"domain"` // lower case after Load
	Secret        Secret        `mapstructure:"secret"` // after Load: the secret, from secret or secret_file
	SecretFile    string        `mapstructure:"secret_file"`
	ServedDomains []string      `mapstructure:"served_domains"` // lower case after Load
	ReconnectMin  time.Duration `mapstructure:"reconnect_min"`
	ReconnectMax  time.Duration `mapstructure:"reconnect_max"`
	Keepalive     time.Duration `mapstructure:"keepalive"` // 0: off
	Workers       int           `mapstructure:"workers"`
	QueueSize     int           `mapstructure:"queue_size"`
	MaxStanzaSize int           `mapstructure:"max_stanza_size"`
	LogXML        bool          `mapstructure:"log_xml"`

	secretFromFile bool // Load read Secret from SecretFile
}

// RedisConfig is [redis]. Several addresses mean Redis Cluster.
type RedisConfig struct {
	Addrs        []string      `mapstructure:"addrs"`
	Password     Secret        `mapstructure:"password"` // after Load: from password or password_file
	PasswordFile string        `mapstructure:"password_file"`
	Username     string        `mapstructure:"username"`
	DB           int           `mapstructure:"db"`
	KeyPrefix    string        `mapstructure:"key_prefix"`
	DialTimeout  time.Duration `mapstructure:"dial_timeout"`
	Timeout      time.Duration `mapstructure:"timeout"` // each read and write
	PoolSize     int           `mapstructure:"pool_size"`

	passwordFromFile bool
}

// APNsConfig is [apns] with its [[apns.apps]].
type APNsConfig struct {
	Endpoint    string        `mapstructure:"endpoint"` // "": Apple's host for each device's environment
	CAFile      string        `mapstructure:"ca_file"`
	DryRun      bool          `mapstructure:"dry_run"`
	Workers     int           `mapstructure:"workers"`
	QueueSize   int           `mapstructure:"queue_size"`
	MaxInflight int           `mapstructure:"max_inflight"` // requests per connection
	Timeout     time.Duration `mapstructure:"timeout"`      // one request
	RetryMin    time.Duration `mapstructure:"retry_min"`    // first backoff after a retryable answer
	RetryMax    time.Duration `mapstructure:"retry_max"`    // longest backoff
	Apps        []AppConfig   `mapstructure:"apps"`
}

// AppConfig is one [[apns.apps]] entry. It uses token auth when KeyFile is
// set and certificate auth when CertificateFile is set; with apns.dry_run it
// may have neither.
type AppConfig struct {
	BundleID                string `mapstructure:"bundle_id"`
	Environment             string `mapstructure:"environment"` // "production" or "sandbox" after Load
	TeamID                  string `mapstructure:"team_id"`
	KeyID                   string `mapstructure:"key_id"`
	KeyFile                 string `mapstructure:"key_file"`
	CertificateFile         string `mapstructure:"certificate_file"`
	CertificatePassword     Secret `mapstructure:"certificate_password"` // after Load: from either key
	CertificatePasswordFile string `mapstructure:"certificate_password_file"`

	passwordFromFile bool
}

// CallsConfig is [calls].
type CallsConfig struct {
	RingTimeout   time.Duration `mapstructure:"ring_timeout"`
	StaleAfter    time.Duration `mapstructure:"stale_after"`
	WakeOnPublish bool          `mapstructure:"wake_on_publish"`
	Grace         time.Duration `mapstructure:"grace"`        // a finished call stays for late events
	PublishHold   time.Duration `mapstructure:"publish_hold"` // a publish waits this long for its propose
}

// RegistrationConfig is [registration].
type RegistrationConfig struct {
	MaxDevices int `mapstructure:"max_devices"` // per account
}

// AlertsConfig is [alerts]: the texts of alert pushes. Incoming and Missed
// hold one %s, the caller.
type AlertsConfig struct {
	Incoming string `mapstructure:"incoming"`
	Missed   string `mapstructure:"missed"`
	Message  string `mapstructure:"message"`
}

// HTTPConfig is [http].
type HTTPConfig struct {
	Listen string `mapstructure:"listen"` // "": no HTTP endpoint
}

// LogConfig is [log].
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// defaults holds the value of every key that the file and the environment
// leave out. Table arrays ([[apns.apps]]) have none.
func defaults() Config {
	return Config{
		XMPP: XMPPConfig{
			Server:        "127.0.0.1:5347",
			ReconnectMin:  500 * time.Millisecond,
			ReconnectMax:  30 * time.Second,
			Keepalive:     60 * time.Second,
			Workers:       8,
			QueueSize:     1024,
			MaxStanzaSize: 65536,
		},
		Redis: RedisConfig{
			Addrs:       []string{"127.0.0.1:6379"},
			KeyPrefix:   "jinglepush:",
			DialTimeout: 2 * time.Second,
			Timeout:     1 * time.Second,
		},
		APNs: APNsConfig{
			Workers:     16,
			QueueSize:   10000,
			MaxInflight: 100,
			Timeout:     10 * time.Second,
			RetryMin:    200 * time.Millisecond,
			RetryMax:    5 * time.Second,
		},
		Calls: CallsConfig{
			RingTimeout:   45 * time.Second,
			StaleAfter:    30 * time.Second,
			WakeOnPublish: true,
			Grace:         60 * time.Second,
			PublishHold:   2 * time.Second,
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
}

// Secret is a string that never prints: fmt, slog and encoding/json show
// "<secret>" (or nothing when it is empty). Use string(s) where the value is
// needed.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v, which does not use String.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText covers encoding/json and slog.JSONHandler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var _ encoding.TextMarshaler = Secret("")

// String shows every key with its effective value, one "key = value" line
// each, secrets as <secret>: what check-config prints, safe to log.
func (c Config) String() string {
	var b strings.Builder
	walkKeys(reflect.ValueOf(c), "", func(key string, f reflect.Value) {
		fmt.Fprintf(&b, "%s = %s\n", key, formatValue(f.Interface()))
	})
	return b.String()
}

func formatValue(v any) string {
	switch v := v.(type) {
	case Secret:
		if v == "" {
			return `""`
		}
		return redacted
	case string:
		return strconv.Quote(v)
	case time.Duration:
		return strconv.Quote(v.String())
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// SlogLevel is Level as a log/slog level (info when Level is not valid).
func (l LogConfig) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Load reads the TOML file at path (none when path is ""), applies the
// JINGLEPUSH_* variables of environ (os.Environ() in main, a literal slice in
// tests: the process environment is never read here), reads the *_file
// secrets and validates the result. The error lists every problem at once,
// one per line, each naming its key or variable; it never holds a secret.
func Load(path string, environ []string) (Config, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
	}
	return load(path, data, environ)
}

// load is Load on file contents already read; name is the file's path, for
// messages and for resolving relative paths.
func load(name string, data []byte, environ []string) (Config, error) {
	v := viper.New()
	// A default for every key. The environment goes in as v.Set overrides,
	// not AutomaticEnv: environ is an argument, and AutomaticEnv values
	// never reach Unmarshal for keys viper knows no other way (spf13/viper#761).
	walkKeys(reflect.ValueOf(defaults()), "", func(key string, f reflect.Value) {
		v.SetDefault(key, f.Interface())
	})

	var errs []error
	raw, parseErr := parseTOML(name, data)
	if parseErr != nil {
		errs = append(errs, parseErr)
	} else {
		errs = append(errs, checkRawKeys(raw, "", false)...)
		if err := v.MergeConfigMap(raw); err != nil {
			errs = append(errs, &problem{key: "config", msg: err.Error(), stage: stageParse})
		}
	}
	sources, envErrs := applyEnv(v, environ)
	errs = append(errs, envErrs...)
	if parseErr != nil {
		// Without the file the rest would only report its absence.
		return Config{}, errors.Join(errs...)
	}

	var c Config
	decodeErr := v.UnmarshalExact(&c, func(dc *mapstructure.DecoderConfig) {
		// Types are checked by strictHook: a file's "8" is not 8, and
		// environment strings were converted by applyEnv already.
		dc.WeaklyTypedInput = false
		dc.DecodeHook = strictHook
	})
	decodeErrs, failed := decodeProblems(decodeErr)
	errs = append(errs, decodeErrs...)

	c.normalize(filepath.Dir(name))
	for _, e := range c.check() {
		// A key that failed to decode holds a zero value: saying that it,
		// or a check that names it, is out of range would be noise.
		p := e.(*problem)
		if !slices.ContainsFunc(failed, func(f string) bool { return related(p.key, f) || mentions(p.msg, f) }) {
			errs = append(errs, p)
		}
	}
	errs = append(errs, c.readSecretFiles()...)

	if len(errs) > 0 {
		for _, e := range errs {
			if p, ok := e.(*problem); ok {
				p.annotate(sources)
			}
		}
		slices.SortStableFunc(errs, func(a, b error) int { return sectionRank(a) - sectionRank(b) })
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

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

// annotate names the variable a value came from: "redis.db (JINGLEPUSH_REDIS_DB)".
func (p *problem) annotate(sources map[string]string) {
	key := p.key
	if i := strings.LastIndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		if _, ok := sources[key]; !ok {
			key = key[:i] // redis.addrs[1] came from JINGLEPUSH_REDIS_ADDRS
		}
	}
	if src, ok := sources[key]; ok {
		p.key += " (" + src + ")"
	}
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

// ---- the file

func parseTOML(name string, data []byte) (map[string]any, error) {
	raw := map[string]any{}
	err := toml.Unmarshal(data, &raw)
	if err == nil {
		return raw, nil
	}
	if name == "" {
		name = "config"
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		// Error() is one line and quotes at most one character of the
		// document; String() would show whole lines, secrets included.
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return nil, &problem{key: fmt.Sprintf("%s:%d:%d", name, row, col), msg: msg, stage: stageParse}
	}
	return nil, &problem{key: name, msg: err.Error(), stage: stageParse}
}

// checkRawKeys reports, and removes from raw, what viper would silently
// accept or lose: keys that are not lower case or that hold a dot (viper
// folds case and splits on dots, so "Domain" or "xmpp.domain" = … at the top
// would quietly set xmpp.domain), and empty tables, which viper drops before
// UnmarshalExact could see them.
func checkRawKeys(raw map[string]any, prefix string, inArray bool) []error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		key := joinKey(prefix, k)
		switch {
		case k != strings.ToLower(k):
			errs = append(errs, &problem{key: key, msg: "unknown key (keys are lower case)", stage: stageDecode})
			delete(raw, k)
			continue
		case strings.Contains(k, "."):
			errs = append(errs, &problem{key: strconv.Quote(key), msg: `unknown key (a key holds no ".": write a [section])`, stage: stageDecode})
			delete(raw, k)
			continue
		}
		switch val := raw[k].(type) {
		case map[string]any:
			if len(val) == 0 && !inArray && !isSection(key) {
				errs = append(errs, unknownOrMistyped(key, val))
				delete(raw, k)
				continue
			}
			errs = append(errs, checkRawKeys(val, key, inArray)...)
		case []any:
			for i, elem := range val {
				if m, ok := elem.(map[string]any); ok {
					errs = append(errs, checkRawKeys(m, fmt.Sprintf("%s[%d]", key, i), true)...)
				}
			}
		}
	}
	return errs
}

func unknownOrMistyped(key string, val any) error {
	if i := slices.IndexFunc(fileKeys, func(k keyInfo) bool { return k.name == key }); i >= 0 {
		return &problem{key: key, msg: fmt.Sprintf("must be %s, not %s", describeType(fileKeys[i].typ), describeValue(val)), stage: stageDecode}
	}
	return unknownKey(key)
}

// unknownKey names the key and the keys its section does have.
func unknownKey(key string) error {
	var known []string
	section, _, nested := strings.Cut(key, ".")
	switch {
	case strings.HasPrefix(key, "apns.apps["):
		for _, k := range appKeys {
			known = append(known, k.name)
		}
		return &problem{key: key, msg: "unknown key; an [[apns.apps]] entry has " + strings.Join(known, ", "), stage: stageDecode}
	case nested && isSection(section):
		for _, k := range fileKeys {
			if s, name, _ := strings.Cut(k.name, "."); s == section {
				known = append(known, name)
			}
		}
		return &problem{key: key, msg: "unknown key; [" + section + "] has " + strings.Join(known, ", "), stage: stageDecode}
	}
	return &problem{key: key, msg: "unknown section; the sections are " + strings.Join(sections(), ", "), stage: stageDecode}
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// ---- keys

// keyInfo is one leaf key and the Go type of its value.
type keyInfo struct {
	name string
	typ  reflect.Type
}

// fileKeys lists every key but those inside [[apns.apps]], in file order;
// appKeys lists the keys of one [[apns.apps]] entry. Both come from the
// struct tags, so a new field is a new key everywhere at once.
var fileKeys, appKeys = collectKeys(Config{}), collectKeys(AppConfig{})

func collectKeys(v any) []keyInfo {
	var keys []keyInfo
	walkKeys(reflect.ValueOf(v), "", func(key string, f reflect.Value) {
		keys = append(keys, keyInfo{key, f.Type()})
	})
	return keys
}

// walkKeys calls fn for every leaf key of the struct v, in declaration order,
// with its field (settable when v is). Entries of a slice of structs are
// visited as "apns.apps[0].bundle_id"; an empty slice has no keys.
func walkKeys(v reflect.Value, prefix string, fn func(key string, f reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("mapstructure")
		if !sf.IsExported() || tag == "" || tag == "-" {
			continue
		}
		key, f := joinKey(prefix, tag), v.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			walkKeys(f, key, fn)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			for j := range f.Len() {
				walkKeys(f.Index(j), fmt.Sprintf("%s[%d]", key, j), fn)
			}
		default:
			fn(key, f)
		}
	}
}

func sections() []string {
	var s []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		s = append(s, t.Field(i).Tag.Get("mapstructure"))
	}
	return s
}

func isSection(s string) bool { return slices.Contains(sections(), s) }

// ---- types

var durationType = reflect.TypeFor[time.Duration]()

// strictHook checks every value's type before mapstructure sees it, so that
// each mistake reads the same way ("must be a whole number, not a string")
// and durations are Go duration strings, never nanoseconds.
func strictHook(from, to reflect.Type, data any) (any, error) {
	if to == durationType {
		switch d := data.(type) {
		case time.Duration:
			if d < 0 {
				return nil, errNegative
			}
			return d, nil
		case string:
			return parseDuration(d)
		case int64:
			if d == 0 { // keepalive = 0 reads naturally as "off"
				return time.Duration(0), nil
			}
		}
		return nil, fmt.Errorf("must be %s, not %s", describeType(to), describeValue(data))
	}
	ok := true
	switch to.Kind() {
	case reflect.String:
		ok = from.Kind() == reflect.String
	case reflect.Int:
		ok = slices.Contains([]reflect.Kind{reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64}, from.Kind())
	case reflect.Bool:
		ok = from.Kind() == reflect.Bool
	case reflect.Slice:
		ok = from.Kind() == reflect.Slice || from.Kind() == reflect.Array
	case reflect.Struct:
		ok = from.Kind() == reflect.Map || from.Kind() == reflect.Struct
	}
	if !ok {
		return nil, fmt.Errorf("must be %s, not %s", describeType(to), describeValue(data))
	}
	return data, nil
}

var errNegative = errors.New("must not be negative")

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("must be %s", describeType(durationType))
	}
	if d < 0 {
		return 0, errNegative
	}
	return d, nil
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration such as "45s" or "500ms"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "an array of tables"
	case t.Kind() == reflect.Slice:
		return `an array of strings such as ["a", "b"]`
	case t.Kind() == reflect.Struct:
		return "a table"
	}
	return t.String()
}

// describeValue names the TOML type of a decoded value (never the value).
func describeValue(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "a whole number"
	case float64:
		return "a fractional number"
	case bool:
		return "true or false"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalTime, toml.LocalDateTime:
		return "a date or time"
	}
	return fmt.Sprintf("%T", v)
}

// decodeProblems turns mapstructure's errors into problems, and lists the
// keys whose values did not decode.
func decodeProblems(err error) (errs []error, failed []string) {
	for _, e := range leaves(err) {
		de, ok := e.(*mapstructure.DecodeError)
		if !ok {
			errs = append(errs, &problem{key: "config", msg: e.Error(), stage: stageDecode})
			continue
		}
		if list, ok := strings.CutPrefix(de.Unwrap().Error(), "has invalid keys: "); ok {
			for _, k := range strings.Split(list, ", ") {
				errs = append(errs, unknownKey(joinKey(de.Name(), k)))
			}
			continue
		}
		failed = append(failed, de.Name())
		errs = append(errs, &problem{key: de.Name(), msg: de.Unwrap().Error(), stage: stageDecode})
	}
	return errs, failed
}

// leaves flattens a tree of wrapped and joined errors, stopping at
// mapstructure's per-key errors and at problems.
func leaves(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case *mapstructure.DecodeError, *problem:
		return []error{e}
	case interface{ Unwrap() []error }:
		var all []error
		for _, inner := range e.Unwrap() {
			all = append(all, leaves(inner)...)
		}
		return all
	case interface{ Unwrap() error }:
		return leaves(e.Unwrap())
	}
	return []error{err}
}

// ---- the environment

// envPrefix starts every override: JINGLEPUSH_<SECTION>_<KEY>, the key upper
// case with "." as "_" (JINGLEPUSH_CALLS_RING_TIMEOUT), and for [[apns.apps]]
// JINGLEPUSH_APNS_APPS_<index>_<KEY> (JINGLEPUSH_APNS_APPS_0_KEY_FILE), where
// the index counts the file's entries from 0 and the next free index adds an
// entry.
//
// Which variables are config: those whose name continues after the prefix
// with a section name and "_" (JINGLEPUSH_XMPP_…, JINGLEPUSH_REDIS_…). Each
// of those must name a key, so a typo such as JINGLEPUSH_XMPP_SECRT is an
// error. Other JINGLEPUSH_ names (JINGLEPUSH_CONFIG, JINGLEPUSH_TEST_…) are
// not config and are left alone.
const envPrefix = "JINGLEPUSH_"

const envApps = "APNS_APPS"

// applyEnv sets viper overrides from the JINGLEPUSH_ variables of environ,
// converted to each key's type. It returns which variable set which key.
func applyEnv(v *viper.Viper, environ []string) (map[string]string, []error) {
	sources := map[string]string{}
	var errs []error
	var apps []appVar
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		rest, isOurs := strings.CutPrefix(name, envPrefix)
		if !ok || !isOurs {
			continue
		}
		section, _, _ := strings.Cut(rest, "_")
		if !isSection(strings.ToLower(section)) || section != strings.ToUpper(section) {
			continue // not config: see envPrefix
		}
		if tail, ok := strings.CutPrefix(rest, envApps+"_"); ok {
			idx, field, _ := strings.Cut(tail, "_")
			i, err := strconv.Atoi(idx)
			field = strings.ToLower(field)
			if err != nil || i < 0 || strings.HasPrefix(idx, "+") || !slices.ContainsFunc(appKeys, func(k keyInfo) bool { return k.name == field }) {
				errs = append(errs, &problem{key: name, msg: "is not a config variable; an app's keys are set as " + envPrefix + envApps + "_<index>_<KEY>, KEY one of " + envNames(appKeys), stage: stageDecode})
				continue
			}
			apps = append(apps, appVar{name: name, field: field, value: value, index: i})
			continue
		}
		i := slices.IndexFunc(fileKeys, func(k keyInfo) bool { return envName(k.name) == rest })
		if i < 0 {
			var known []keyInfo
			for _, k := range fileKeys {
				if strings.HasPrefix(envName(k.name), section+"_") {
					known = append(known, k)
				}
			}
			msg := "is not a config variable; [" + strings.ToLower(section) + "] has " + envNames(known)
			if rest == envApps {
				msg = "is not a config variable; set an app's keys as " + envPrefix + envApps + "_<index>_<KEY>"
			}
			errs = append(errs, &problem{key: name, msg: msg, stage: stageDecode})
			continue
		}
		val, err := parseEnvValue(fileKeys[i].typ, value)
		if err != nil {
			errs = append(errs, &problem{key: name, msg: err.Error(), stage: stageDecode})
			continue
		}
		v.Set(fileKeys[i].name, val)
		sources[fileKeys[i].name] = name
	}
	if len(apps) > 0 {
		errs = append(errs, applyAppEnv(v, apps, sources)...)
	}
	return sources, errs
}

// appVar is one JINGLEPUSH_APNS_APPS_<index>_<KEY> variable.
type appVar struct {
	name, field, value string
	index              int
}

// applyAppEnv applies the app variables. A table array is one viper value:
// copy the file's entries, change them, and set the whole array. Entries
// that are not tables are left for UnmarshalExact to report.
func applyAppEnv(v *viper.Viper, apps []appVar, sources map[string]string) []error {
	var errs []error
	var entries []any
	switch cur := v.Get("apns.apps").(type) {
	case nil:
	case []any:
		for _, e := range cur {
			if m, ok := e.(map[string]any); ok {
				e = maps.Clone(m)
			}
			entries = append(entries, e)
		}
	default:
		return nil // apns.apps is not an array: decoding says so
	}
	slices.SortStableFunc(apps, func(a, b appVar) int { return a.index - b.index })
	for _, a := range apps {
		if a.index > len(entries) {
			errs = append(errs, &problem{key: a.name, msg: fmt.Sprintf("index %d skips ahead: the next free [[apns.apps]] index is %d", a.index, len(entries)), stage: stageDecode})
			continue
		}
		if a.index == len(entries) {
			entries = append(entries, map[string]any{})
		}
		if m, ok := entries[a.index].(map[string]any); ok {
			m[a.field] = a.value
			sources[fmt.Sprintf("apns.apps[%d].%s", a.index, a.field)] = a.name
		}
	}
	v.Set("apns.apps", entries)
	return errs
}

func envName(key string) string { return strings.ToUpper(strings.ReplaceAll(key, ".", "_")) }

func envNames(keys []keyInfo) string {
	var names []string
	for _, k := range keys {
		_, n, ok := strings.Cut(k.name, ".")
		if !ok {
			n = k.name
		}
		names = append(names, strings.ToUpper(n))
	}
	return strings.Join(names, ", ")
}

// parseEnvValue converts a variable to the type of its key. Lists split on
// commas and white space. The value is never quoted back: it may be a secret.
func parseEnvValue(t reflect.Type, s string) (any, error) {
	switch {
	case t == durationType:
		return parseDuration(s)
	case t.Kind() == reflect.String:
		return s, nil
	case t.Kind() == reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("must be %s", describeType(t))
		}
		return n, nil
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("must be %s", describeType(t))
		}
		return b, nil
	case t.Kind() == reflect.Slice:
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }), nil
	}
	return nil, fmt.Errorf("cannot be set from the environment")
}

// ---- after decoding

// normalize lower-cases domains, fills each app's environment and resolves
// relative *_file paths against dir, the config file's directory (also for
// paths set from the environment: one rule for every path).
func (c *Config) normalize(dir string) {
	c.XMPP.Domain = strings.ToLower(c.XMPP.Domain)
	for i, d := range c.XMPP.ServedDomains {
		c.XMPP.ServedDomains[i] = strings.ToLower(d)
	}
	for i := range c.APNs.Apps {
		if c.APNs.Apps[i].Environment == "" {
			c.APNs.Apps[i].Environment = "production"
		}
	}
	walkKeys(reflect.ValueOf(c).Elem(), "", func(key string, f reflect.Value) {
		if strings.HasSuffix(key, "_file") && f.String() != "" && !filepath.IsAbs(f.String()) {
			f.SetString(filepath.Join(dir, f.String()))
		}
	})
}

// maxSecretSize bounds a *_file secret: a larger file is the wrong file.
const maxSecretSize = 64 << 10

// readSecretFiles puts the contents of each *_file secret in its Secret.
func (c *Config) readSecretFiles() []error {
	var errs []error
	read := func(key, path string, dst *Secret, fromFile *bool) {
		if path == "" || *dst != "" {
			return // nothing to read, or both set (check says so)
		}
		s, err := readSecret(path)
		if err != nil {
			errs = append(errs, &problem{key: key, msg: err.Error(), stage: stageValue, err: err})
			return
		}
		*dst, *fromFile = s, true
	}
	read("xmpp.secret_file", c.XMPP.SecretFile, &c.XMPP.Secret, &c.XMPP.secretFromFile)
	read("redis.password_file", c.Redis.PasswordFile, &c.Redis.Password, &c.Redis.passwordFromFile)
	for i := range c.APNs.Apps {
		a := &c.APNs.Apps[i]
		read(fmt.Sprintf("apns.apps[%d].certificate_password_file", i), a.CertificatePasswordFile, &a.CertificatePassword, &a.passwordFromFile)
	}
	return errs
}

func readSecret(path string) (Secret, error) {
	if err := checkFile(path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	switch {
	case err != nil:
		return "", err
	case len(b) > maxSecretSize:
		return "", fmt.Errorf("%s is larger than %d KiB", path, maxSecretSize>>10)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return Secret(s), nil
}

// checkFile tells whether path is a regular file that can be opened (a FIFO
// or a device is refused: reading it could block or never end).
func checkFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// ---- validation

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
	case r.DB != 0 && len(r.Addrs) > 1:
		p.add("redis.db", "must be 0 with several redis.addrs (Redis Cluster has only database 0)")
	}
	if strings.ContainsAny(r.KeyPrefix, "{}") {
		p.add("redis.key_prefix", "must not hold { or }: keys are hash-tagged by account")
	}
	p.positive("redis.dial_timeout", r.DialTimeout)
	p.positive("redis.timeout", r.Timeout)
	p.atLeast("redis.pool_size", r.PoolSize, 0)
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
	p.oneOf(key+".environment", a.Environment, "production", "sandbox")

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
