package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jinglepush/jinglepush/pushnotify"
)

// SIGHUP reads the configuration again, files and variables as at start.
// What it changes without a restart, and without touching the component
// stream: the APNs credentials of the running apps (a rotated key, a
// renewed certificate, whose files are read again even when their paths
// stay), the alert texts and log.level. Every other key that changed is
// named in the log as needing a restart, and keeps its running value. A
// configuration that does not load, or credentials that do not, are
// refused whole: the running ones stay.

// reloadable tells whether SIGHUP applies a key.
func reloadable(key string) bool {
	if key == "log.level" || strings.HasPrefix(key, "alerts.") {
		return true
	}
	if rest, ok := strings.CutPrefix(key, "apns.apps["); ok {
		_, field, _ := strings.Cut(rest, "].")
		return slices.Contains([]string{"team_id", "key_id", "key_file", "certificate_file", "certificate_password", "certificate_password_file"}, field)
	}
	return false
}

// reloader applies SIGHUP. run is its loop; reload is one reload.
type reloader struct {
	path    string
	environ []string
	level   *slog.LevelVar

	running Config // what runs: the start's, with each reload's reloadable keys
	sender  *pushnotify.Sender
	log     *slog.Logger
	m       reloadMetrics
	hup     chan os.Signal
}

type reloadMetrics struct {
	ok, okAt prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) reloadMetrics {
	m := reloadMetrics{
		ok: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "jinglepush", Subsystem: "config", Name: "last_reload_successful",
			Help: "1 when the configuration last read (at start or on SIGHUP) was taken, 0 when it was refused.",
		}),
		okAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "jinglepush", Subsystem: "config", Name: "last_reload_success_timestamp_seconds",
			Help: "When the configuration was last taken, at start or on SIGHUP (unix seconds).",
		}),
	}
	reg.MustRegister(m.ok, m.okAt)
	m.ok.Set(1)
	m.okAt.SetToCurrentTime()
	return m
}

// init gives the reloader what it changes, registers its metrics and
// takes SIGHUP over from here on (its default would end the process).
func (r *reloader) init(cfg Config, sender *pushnotify.Sender, log *slog.Logger, reg prometheus.Registerer) {
	r.running, r.sender, r.log = cfg, sender, log.With("component", "reload")
	r.m = newReloadMetrics(reg)
	r.hup = make(chan os.Signal, 1)
	signal.Notify(r.hup, syscall.SIGHUP)
}

// run reloads on every SIGHUP until ctx ends.
func (r *reloader) run(ctx context.Context) {
	defer signal.Stop(r.hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.hup:
			_ = r.reload()
		}
	}
}

// reload reads the configuration and applies what it can; the error says
// why it was refused.
func (r *reloader) reload() error {
	r.log.Info("SIGHUP: reading the configuration again", "config", r.path)
	cfg, err := Load(r.path, r.environ)
	if err == nil {
		err = r.apply(cfg)
	}
	if err != nil {
		r.m.ok.Set(0)
		r.log.Error("configuration not reloaded; the running one stays", "error", err)
		return err
	}
	r.m.ok.Set(1)
	r.m.okAt.SetToCurrentTime()
	return nil
}

func (r *reloader) apply(cfg Config) error {
	apps, err := loadApps(cfg)
	if err != nil {
		return err
	}
	// Credentials go to the running apps, found by bundle id; an app that
	// is new, gone or moved needs a restart, and its keys say so below.
	var push []pushnotify.App
	next := r.running
	next.APNs.Apps = slices.Clone(r.running.APNs.Apps)
	for _, a := range apps {
		i := slices.IndexFunc(next.APNs.Apps, func(o AppConfig) bool { return o.BundleID == a.BundleID })
		if i < 0 {
			continue
		}
		push = append(push, a)
		n := &next.APNs.Apps[i]
		for _, c := range cfg.APNs.Apps {
			if c.BundleID == a.BundleID {
				n.TeamID, n.KeyID, n.KeyFile = c.TeamID, c.KeyID, c.KeyFile
				n.CertificateFile, n.CertificatePassword, n.CertificatePasswordFile = c.CertificateFile, c.CertificatePassword, c.CertificatePasswordFile
			}
		}
	}
	if err := r.sender.Reload(push, pushnotify.Alerts(cfg.Alerts)); err != nil {
		return err
	}
	next.Alerts, next.Log.Level = cfg.Alerts, cfg.Log.Level
	r.level.Set(cfg.Log.SlogLevel())

	changed, restart := diffKeys(r.running, cfg)
	r.running = next
	if len(restart) > 0 {
		r.log.Warn("these settings changed but take effect only after a restart; they keep their running values",
			"keys", strings.Join(restart, " "))
	}
	r.log.Info("configuration reloaded", "changed", strings.Join(changed, " "))
	return nil
}

// diffKeys lists the keys whose values differ between two configurations:
// those a reload applies and those that need a restart. Values are
// compared, never shown.
func diffKeys(a, b Config) (applied, restart []string) {
	values := func(c Config) map[string]any {
		m := map[string]any{}
		walkKeys(reflect.ValueOf(c), "", func(key string, f reflect.Value) { m[key] = f.Interface() })
		return m
	}
	va, vb := values(a), values(b)
	var keys []string
	for k := range va {
		keys = append(keys, k)
	}
	for k := range vb {
		if _, ok := va[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		x, inA := va[k]
		y, inB := vb[k]
		if inA && inB && reflect.DeepEqual(x, y) {
			continue
		}
		if reloadable(k) && inA && inB && a.APNs.appAt(k) == b.APNs.appAt(k) {
			applied = append(applied, k)
		} else {
			restart = append(restart, k)
		}
	}
	return applied, restart
}

// appAt is the bundle id of the app a key such as "apns.apps[1].key_file"
// belongs to ("" for other keys): credentials move with their app, not
// their position.
func (a APNsConfig) appAt(key string) string {
	rest, ok := strings.CutPrefix(key, "apns.apps[")
	if !ok {
		return ""
	}
	i := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		i = i*10 + int(c-'0')
	}
	if i < len(a.Apps) {
		return a.Apps[i].BundleID
	}
	return ""
}
