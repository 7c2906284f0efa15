// Command jinglepush runs the jinglepush XEP-0114 component: it turns Jingle
// call initiations for unreachable iPhones into Apple PushKit VoIP pushes.
//
//	jinglepush -config /etc/jinglepush/config.toml
//	jinglepush check-config -config /etc/jinglepush/config.toml
//	jinglepush push-test -config /etc/jinglepush/config.toml [--kind voip|alert|background] TOKEN
//	jinglepush devices -config /etc/jinglepush/config.toml ACCOUNT [--remove DEVICE]
//	jinglepush trace -config /etc/jinglepush/config.toml ACCOUNT [CALL-ID]
//	jinglepush version
//
// SIGHUP reloads the configuration (reload.go); SIGTERM stops.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jinglepush/jinglepush/component"
	"github.com/jinglepush/jinglepush/pushnotify"
	"github.com/jinglepush/jinglepush/sessions"
)

// version is set at build time: -ldflags "-X main.version=…".
var version = "dev"

// shutdownTimeout bounds the whole shutdown, even when nothing else does.
const shutdownTimeout = 15 * time.Second

func main() {
	// Until the reloader listens (reload.go), a SIGHUP must not end the
	// process: systemd may send one as soon as it started it.
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code. Tests call it with
// their own context, arguments and environment.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if c, ok := operatorCommands[args[0]]; ok {
			return c(ctx, args[1:], environ, stdout, stderr)
		}
	}
	cmd := "run"
	if len(args) > 0 && (args[0] == "check-config" || args[0] == "version" || args[0] == "run") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("jinglepush "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.toml", "the TOML configuration `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jinglepush: unexpected arguments: %v\n", fs.Args())
		return 2
	}

	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "jinglepush", version)
		return 0
	case "check-config":
		cfg, err := Load(*path, environ)
		if err != nil {
			fmt.Fprintf(stderr, "%s: configuration is not valid:\n%v\n", *path, err)
			return 1
		}
		if _, err := loadApps(cfg); err != nil {
			fmt.Fprintf(stderr, "%s: configuration is not valid:\n%v\n", *path, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: configuration is valid\n%s", *path, cfg)
		return 0
	}

	cfg, err := Load(*path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration is not valid:\n%v\n", *path, err)
		return 1
	}
	level := new(slog.LevelVar) // SIGHUP may change it
	level.Set(cfg.Log.SlogLevel())
	log := newLogger(cfg.Log.Format, level, stderr)
	if err := serve(ctx, cfg, log, &reloader{path: *path, environ: environ, level: level}); err != nil {
		log.Error("jinglepush stopped", "error", err)
		return 1
	}
	return 0
}

// operatorCommands are the operator's tools (pushtest.go, devices.go,
// trace.go): each parses its own flags and reads the configuration itself.
var operatorCommands = map[string]func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int{
	"push-test": pushTestCommand,
	"devices":   devicesCommand,
	"trace":     traceCommand,
}

func newLogger(format string, level slog.Leveler, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadApps reads the credentials of every configured app.
func loadApps(cfg Config) ([]pushnotify.App, error) {
	var apps []pushnotify.App
	var errs []error
	for _, a := range cfg.APNs.Apps {
		app, err := pushnotify.LoadApp(pushnotify.AppFiles{
			BundleID: a.BundleID, Environment: a.Environment, TeamID: a.TeamID, KeyID: a.KeyID,
			KeyFile: a.KeyFile, CertificateFile: a.CertificateFile, CertificatePassword: string(a.CertificatePassword),
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		apps = append(apps, app)
	}
	return apps, errors.Join(errs...)
}

// serve wires the parts and runs them until ctx ends, then shuts down in
// order: stop taking stanzas, finish the queued ones, send the queued
// pushes, close Redis.
func serve(ctx context.Context, cfg Config, log *slog.Logger, rl *reloader) error {
	log.Info("jinglepush starting", "version", version, "domain", cfg.XMPP.Domain, "server", cfg.XMPP.Server, "dry_run", cfg.APNs.DryRun)
	log.Debug("configuration\n" + cfg.String())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())

	rdb := newRedisClient(cfg.Redis)
	defer rdb.Close()
	log.Info("redis", "kind", cfg.Redis.Kind(), "addrs", cfg.Redis.Addrs, "master_name", cfg.Redis.MasterName)
	sessions.InstrumentRedis(rdb, reg)
	store := sessions.NewStore(rdb, cfg.Redis.KeyPrefix, sessions.StoreOptions{TraceTTL: cfg.Calls.TraceTTL})
	if err := store.LoadScripts(ctx); err != nil {
		// Not fatal: Redis may come up later; scripts load on first use.
		log.Warn("redis not ready at start", "error", err)
	}
	if warnings, err := store.Durability(ctx); err == nil {
		for _, w := range warnings {
			log.Warn("redis may lose jinglepush's data (docs/redis.md)", "risk", w)
		}
	}

	apps, err := loadApps(cfg)
	if err != nil {
		return err
	}
	roots, err := certPool(cfg.APNs.CAFile)
	if err != nil {
		return err
	}
	svcApps := make([]sessions.App, len(apps))
	for i, a := range apps {
		svcApps[i] = sessions.App{BundleID: a.BundleID, Environment: a.Environment}
	}
	svcCfg := sessions.Config{
		ServedDomains: cfg.XMPP.ServedDomains,
		Apps:          svcApps,
		RingTimeout:   cfg.Calls.RingTimeout,
		StaleAfter:    cfg.Calls.StaleAfter,
		Grace:         cfg.Calls.Grace,
		PublishHold:   cfg.Calls.PublishHold,
		PublishWindow: cfg.Calls.PublishWindow,
		WakeOnPublish: cfg.Calls.WakeOnPublish,
		MaxDevices:    cfg.Registration.MaxDevices,
		Lease:         cfg.Calls.Lease,
		FailOpenAfter: cfg.Calls.FailOpenAfter,

		RingFrom:        cfg.Calls.RingFrom,
		StrangerWindow:  cfg.Calls.StrangerAlertWindow,
		OnePerCaller:    cfg.Calls.OneCallPerCaller,
		MaxRinging:      cfg.Calls.MaxRinging,
		MaxRemoteDomain: cfg.Calls.MaxRingingPerDomain,
		PairPerMinute:   cfg.Calls.CallerCalleePerMinute,
		CallerPerMinute: cfg.Calls.CallerPerMinute,
		DomainPerMinute: cfg.Calls.DomainPerMinute,
	}

	// The store hears back from the sender (dead tokens, "does this call
	// still ring?"); the service decides and tells the sender. A push
	// slower than half the lease renews its wake's lease while in flight.
	sender, err := pushnotify.New(pushnotify.Config{
		Apps: apps, Endpoint: cfg.APNs.Endpoint, RootCAs: roots, DryRun: cfg.APNs.DryRun, LogBodies: cfg.APNs.LogBodies,
		Workers: cfg.APNs.Workers, QueueSize: cfg.APNs.QueueSize, MaxInflight: cfg.APNs.MaxInflight,
		Timeout: cfg.APNs.Timeout, RetryMin: cfg.APNs.RetryMin, RetryMax: cfg.APNs.RetryMax,
		HoldEvery: svcCfg.LeaseRenewal(),
		Alerts:    pushnotify.Alerts(cfg.Alerts),
	}, store, log, reg)
	if err != nil {
		return err
	}

	rl.init(cfg, sender, log, reg)
	go rl.run(ctx)

	// Rosters are read through the component's stream (XEP-0356) when
	// only contacts may ring a phone.
	var rosters *component.Rosters
	var svcRosters sessions.Rosters
	if cfg.Calls.RingFrom == sessions.RingFromContacts {
		rosters = component.NewRosters(10_000, cfg.Calls.RosterTTL, 3*time.Second)
		svcRosters = rosters
	}
	svc := sessions.NewService(store, sender, svcRosters, svcCfg, log, reg)

	comp, err := component.New(component.Config{
		Server: cfg.XMPP.Server, Domain: cfg.XMPP.Domain, Secret: string(cfg.XMPP.Secret),
		ServedDomains: cfg.XMPP.ServedDomains,
		ReconnectMin:  cfg.XMPP.ReconnectMin, ReconnectMax: cfg.XMPP.ReconnectMax, Keepalive: cfg.XMPP.Keepalive,
		Workers: cfg.XMPP.Workers, QueueSize: cfg.XMPP.QueueSize, MaxStanzaSize: cfg.XMPP.MaxStanzaSize,
		LogXML: cfg.XMPP.LogXML, Version: version, Rosters: rosters, DrainTimeout: cfg.XMPP.DrainTimeout,
	}, svc, log, reg)
	if err != nil {
		return err
	}

	var httpSrv *http.Server
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		httpSrv = &http.Server{Handler: httpHandler(reg, comp, svc, sender, cfg.HTTP.Pprof), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http endpoint stopped", "error", err)
			}
		}()
		log.Info("http endpoint listening", "addr", ln.Addr().String())
	}

	timersDone := make(chan struct{})
	go func() { svc.RunTimers(ctx); close(timersDone) }()

	// The whole shutdown is bounded from the signal on: the component
	// drains its queues for xmpp's drain timeout at most, and the sender
	// gets what is left of shutdownTimeout for the pushes still queued.
	var stoppedAt atomic.Int64
	stop := context.AfterFunc(ctx, func() {
		stoppedAt.CompareAndSwap(0, time.Now().UnixNano())
		log.Info("stopping: no more stanzas are taken; queued work gets its time", "bound", shutdownTimeout)
	})
	defer stop()
	_ = comp.Run(ctx) // returns once ctx ended and the queued stanzas are handled (or the drain ran out)
	<-timersDone

	stoppedAt.CompareAndSwap(0, time.Now().UnixNano())
	stopping := time.Unix(0, stoppedAt.Load())
	sctx, cancel := context.WithDeadline(context.Background(), stopping.Add(shutdownTimeout-time.Second))
	defer cancel()
	var errs []error
	if err := sender.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	if httpSrv != nil {
		_ = httpSrv.Shutdown(sctx)
	}
	log.Info("jinglepush stopped", "took", time.Since(stopping).Round(time.Millisecond))
	return errors.Join(errs...)
}

// httpHandler serves /healthz (the process runs), /readyz (the stream is up,
// Redis answers, no app is failing at APNs), /metrics, and /debug/pprof/
// when the operator turned it on.
func httpHandler(reg *prometheus.Registry, comp *component.Component, svc *sessions.Service, sender *pushnotify.Sender, profiles bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var problems []string
		if !comp.Connected() {
			problems = append(problems, "component stream: not connected")
		}
		if err := svc.Ready(ctx); err != nil {
			problems = append(problems, "redis: "+err.Error())
		}
		if err := sender.Healthy(); err != nil {
			problems = append(problems, "apns: "+err.Error())
		}
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, p := range problems {
				fmt.Fprintln(w, p)
			}
			return
		}
		fmt.Fprintln(w, "ready")
		// Risks that do not stop the service, for the operator to see.
		if warnings, err := svc.Durability(ctx); err == nil {
			for _, msg := range warnings {
				fmt.Fprintln(w, "warning: redis:", msg)
			}
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if profiles {
		// For finding what a load costs (docs/performance.md); off by
		// default: a profile shows memory, and a CPU profile costs CPU.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// certPool returns the system's trusted CAs plus the one in file (for a
// private APNs endpoint or tests), or nil for the system's alone.
func certPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("apns.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("apns.ca_file: %s holds no PEM certificate", file)
	}
	return pool, nil
}
