package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jinglepush/jinglepush/component"
	"github.com/jinglepush/jinglepush/pushnotify"
	"github.com/jinglepush/jinglepush/sessions"
)

// The configuration is read in four steps, one file each: config_load.go
// (the file, viper, types), config_env.go (JINGLEPUSH_* variables),
// config_validate.go (values) and config_secrets.go (secrets and *_file).

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
	DrainTimeout  time.Duration `mapstructure:"drain_timeout"` // stopping waits this long for queued stanzas

	secretFromFile bool // Load read Secret from SecretFile
}

// RedisConfig is [redis]. One address means a single node, several a Redis
// Cluster; with MasterName the addresses are Redis Sentinels (redis.go).
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

	// MasterName is the master's name at the Sentinels; set, Addrs are
	// the Sentinels and the client follows their failovers.
	MasterName           string `mapstructure:"master_name"`
	SentinelUsername     string `mapstructure:"sentinel_username"`
	SentinelPassword     Secret `mapstructure:"sentinel_password"` // after Load: from either key
	SentinelPasswordFile string `mapstructure:"sentinel_password_file"`
	// ClusterRefresh is how old the cluster client's slot map may grow
	// before it is read again; a failed command reads it at once.
	ClusterRefresh time.Duration `mapstructure:"cluster_refresh"`

	passwordFromFile         bool
	sentinelPasswordFromFile bool
}

// APNsConfig is [apns] with its [[apns.apps]].
type APNsConfig struct {
	Endpoint    string        `mapstructure:"endpoint"` // "": Apple's host for each device's environment
	CAFile      string        `mapstructure:"ca_file"`
	DryRun      bool          `mapstructure:"dry_run"`
	LogBodies   bool          `mapstructure:"log_bodies"` // dry-run logs show messages' text and sender
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
	// PublishWindow: a publish belongs to a call that started this close to it.
	PublishWindow time.Duration `mapstructure:"publish_window"`
	Lease         time.Duration `mapstructure:"lease"`           // a wake not delivered in this time is taken over
	FailOpenAfter time.Duration `mapstructure:"fail_open_after"` // Redis silent this long: ring from memory
	TraceTTL      time.Duration `mapstructure:"trace_ttl"`       // how long a call's trace is kept (0: none)

	// Limits on new calls; 0 (false) turns one off.
	RingFrom              string        `mapstructure:"ring_from"`              // anyone | contacts
	StrangerAlertWindow   time.Duration `mapstructure:"stranger_alert_window"`  // a stranger's missed-call alert, once per caller and window
	RosterTTL             time.Duration `mapstructure:"roster_ttl"`             // how long a roster read for ring_from = contacts is kept
	OneCallPerCaller      bool          `mapstructure:"one_call_per_caller"`    // a caller's newer call to a callee whose phone rings is refused
	MaxRinging            int           `mapstructure:"max_ringing"`            // calls ringing at once per callee
	MaxRingingPerDomain   int           `mapstructure:"max_ringing_per_domain"` // of those, from one remote domain
	CallerCalleePerMinute int           `mapstructure:"caller_callee_per_minute"`
	CallerPerMinute       int           `mapstructure:"caller_per_minute"`
	DomainPerMinute       int           `mapstructure:"domain_per_minute"`
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
	Pprof  bool   `mapstructure:"pprof"`  // serve /debug/pprof/
}

// LogConfig is [log].
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// defaults holds the value of every key that the file and the environment
// leave out. The packages own their tuning; the rest is this program's.
// Table arrays ([[apns.apps]]) have none.
func defaults() Config {
	comp, push, sess := component.DefaultConfig(), pushnotify.DefaultConfig(), sessions.DefaultConfig()
	return Config{
		XMPP: XMPPConfig{
			Server:        "127.0.0.1:5347",
			ReconnectMin:  comp.ReconnectMin,
			ReconnectMax:  comp.ReconnectMax,
			Keepalive:     comp.Keepalive,
			Workers:       comp.Workers,
			QueueSize:     comp.QueueSize,
			MaxStanzaSize: comp.MaxStanzaSize,
			DrainTimeout:  comp.DrainTimeout,
		},
		Redis: RedisConfig{
			Addrs:       []string{"127.0.0.1:6379"},
			KeyPrefix:   "jinglepush:",
			DialTimeout: 2 * time.Second,
			Timeout:     1 * time.Second,
			// go-redis's own minute would send a dead master's slots to
			// it for that long after a failover.
			ClusterRefresh: time.Second,
		},
		APNs: APNsConfig{
			Workers:     push.Workers,
			QueueSize:   push.QueueSize,
			MaxInflight: push.MaxInflight,
			Timeout:     push.Timeout,
			RetryMin:    push.RetryMin,
			RetryMax:    push.RetryMax,
		},
		Calls: CallsConfig{
			RingTimeout:   sess.RingTimeout,
			StaleAfter:    sess.StaleAfter,
			WakeOnPublish: sess.WakeOnPublish,
			Grace:         sess.Grace,
			PublishHold:   sess.PublishHold,
			PublishWindow: sess.PublishWindow,
			Lease:         sess.Lease,
			FailOpenAfter: sess.FailOpenAfter,
			TraceTTL:      15 * time.Minute,

			RingFrom:              sess.RingFrom,
			StrangerAlertWindow:   sess.StrangerWindow,
			RosterTTL:             2 * time.Minute,
			OneCallPerCaller:      sess.OnePerCaller,
			MaxRinging:            sess.MaxRinging,
			MaxRingingPerDomain:   sess.MaxRemoteDomain,
			CallerCalleePerMinute: sess.PairPerMinute,
			CallerPerMinute:       sess.CallerPerMinute,
			DomainPerMinute:       sess.DomainPerMinute,
		},
		Registration: RegistrationConfig{MaxDevices: sess.MaxDevices},
		Alerts:       AlertsConfig(push.Alerts),
		HTTP:         HTTPConfig{Listen: "127.0.0.1:9110"},
		Log:          LogConfig{Level: "info", Format: "text"},
	}
}

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
		tag := keyTag(t.Field(i))
		if tag == "" {
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

// fields lists the keys of the struct type t, one level deep, in order.
func fields(t reflect.Type) []keyInfo {
	var keys []keyInfo
	for i := range t.NumField() {
		if tag := keyTag(t.Field(i)); tag != "" {
			keys = append(keys, keyInfo{tag, t.Field(i).Type})
		}
	}
	return keys
}

// keyTag is the key of a struct field, "" for a field that is no key.
func keyTag(sf reflect.StructField) string {
	if tag := sf.Tag.Get("mapstructure"); sf.IsExported() && tag != "-" {
		return tag
	}
	return ""
}

func sections() []string { return names(fields(reflect.TypeFor[Config]())) }

func names(keys []keyInfo) []string {
	var s []string
	for _, k := range keys {
		s = append(s, k.name)
	}
	return s
}

func isSection(s string) bool { return slices.Contains(sections(), s) }

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}
