// Command jinglepush-bench is jinglepush's load harness. It plays the XMPP
// server's side of XEP-0114 itself, runs the real jinglepush binary against
// it with a private redis-server and a local HTTP/2 APNs, feeds it forwarded
// proposes for offline users at chosen rates (0 = as fast as it takes them),
// and reports calls per second, the latency from the stanza written to the
// APNs request received, allocations, RSS and Redis round trips per call. In
// the same run it measures the bare apns2 client against the same APNs, the
// ceiling the component is compared with, and the firehose case (ejabberd's
// mod_service_log copies that are no call). It also reports the Redis
// memory each registered device costs (used_memory before and after the
// registrations). With -cluster and -processes it measures the same load
// again, in the same run, against a Redis Cluster and with several
// processes sharing the stanzas.
//
//	go run ./cmd/jinglepush-bench -rates 0,10000,1000 -duration 20s -cluster -processes 2
//	go run ./cmd/jinglepush-bench -rates 1000 -soak 5m
//	go run ./cmd/jinglepush-bench -rates '' -firehose=false -ceiling=false -users 1000000   # memory only
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

const (
	domain    = "localhost"
	component = "push.localhost"
	secret    = "bench-secret"
	bundleID  = "com.example.chat"
)

type options struct {
	users     int
	rates     []int
	duration  time.Duration
	warmup    time.Duration
	soak      time.Duration
	firehose  bool
	ceiling   bool
	apnsWork  int
	logLevel  string
	keepFiles bool
	profile   string
	window    int64
	bin       string
	// The setups after the first (one process, one redis-server): against
	// a Redis Cluster, and as several processes sharing the stanzas.
	cluster    bool
	processes  int
	extraRates []int
	traceTTL   time.Duration // calls.trace_ttl of jinglepush
	cmdStats   bool          // print INFO commandstats per call of each rate
}

func main() {
	var o options
	var rates string
	flag.IntVar(&o.users, "users", 20000, "offline users, one registered device each")
	flag.StringVar(&rates, "rates", "0,10000,1000", "call rates per second to measure, comma separated (0: as fast as jinglepush takes them)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time per rate")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured time before each rate")
	flag.DurationVar(&o.soak, "soak", 0, "after the rates: run at 1000 calls/s this long and sample RSS (0: skip)")
	flag.BoolVar(&o.firehose, "firehose", true, "measure discarding non-call copies (ejabberd mod_service_log)")
	flag.BoolVar(&o.ceiling, "ceiling", true, "measure the bare apns2 client against the same APNs")
	flag.IntVar(&o.apnsWork, "apns-workers", 16, "apns.workers of jinglepush, and goroutines of the apns2 ceiling")
	flag.StringVar(&o.logLevel, "log-level", "info", "jinglepush's log.level")
	flag.BoolVar(&o.keepFiles, "keep", false, "keep the run's folder (config, logs)")
	flag.StringVar(&o.bin, "bin", "", "a jinglepush binary to measure (default: build ./cmd/jinglepush)")
	flag.Int64Var(&o.window, "window", 2000, "calls in flight at full speed")
	flag.StringVar(&o.profile, "cpuprofile", "", "write jinglepush's CPU profile of each measured rate to this file prefix (<prefix>-<rate>.pprof)")
	flag.BoolVar(&o.cmdStats, "commandstats", false, "print Redis's INFO commandstats of each measured rate, per call")
	flag.BoolVar(&o.cluster, "cluster", false, "also measure against a Redis Cluster of three masters (after the single redis-server)")
	flag.IntVar(&o.processes, "processes", 1, "also measure this many jinglepush processes sharing the stanzas, on the single redis-server (1: not)")
	flag.DurationVar(&o.traceTTL, "trace-ttl", 15*time.Minute, "calls.trace_ttl of jinglepush (0s: no call traces)")
	var extra string
	flag.StringVar(&extra, "extra-rates", "0,1000", "the rates of the -cluster and -processes setups")
	flag.Parse()
	o.rates = parseRates(rates)
	o.extraRates = parseRates(extra)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "jinglepush-bench:", err)
		os.Exit(1)
	}
}

func parseRates(list string) []int {
	var rates []int
	for _, r := range strings.Split(list, ",") {
		if r = strings.TrimSpace(r); r != "" {
			n, err := strconv.Atoi(r)
			if err != nil || n < 0 {
				fmt.Fprintf(os.Stderr, "bad rate %q\n", r)
				os.Exit(2)
			}
			rates = append(rates, n)
		}
	}
	return rates
}

// setup is one arrangement to measure: which Redis, how many processes.
type setup struct {
	name      string
	cluster   bool // a Redis Cluster of three masters, else one redis-server
	processes int
	rates     []int
}

// harness is one setup's run: its Redis, its jinglepush processes, the
// XMPP server's side of their component connections; the APNs stand-in
// and the ceiling are the run's.
type harness struct {
	o       options
	setup   setup
	dir     string
	apns    *fakeAPNs
	xmpp    *xmppServer
	comps   []*child
	https   []string // the /metrics of each process
	seq     int64    // calls written so far
	written []time.Time
	key     *ecdsa.PrivateKey
	ceil    float64
	redis   []*child
	redisUp []string // the redis-servers' addresses
	// dropBase is the component's drop count before the first full-speed load.
	dropBase float64
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "jinglepush-bench-")
	if err != nil {
		return err
	}
	if o.keepFiles {
		fmt.Println("files:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fmt.Printf("# jinglepush load run, %s, %d CPUs, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version())

	// The run's own: the APNs stand-in, the signing key, the binary.
	apns, err := startAPNs(filepath.Join(dir, "apns-ca.pem"))
	if err != nil {
		return err
	}
	defer apns.close()
	bin := o.bin
	if bin == "" {
		if bin, err = buildJinglepush(dir); err != nil {
			return err
		}
	}
	keyFile := filepath.Join(dir, "AuthKey_KEY1234567.p8")
	if err := writeP8(keyFile); err != nil {
		return err
	}
	key, err := token.AuthKeyFromFile(keyFile)
	if err != nil {
		return err
	}
	var ceil float64
	if o.ceiling {
		h := &harness{o: o, apns: apns, key: key}
		ceil = h.ceiling(o.duration)
		fmt.Printf("bare apns2 ceiling (%d goroutines, same APNs): %.0f pushes/s\n\n", o.apnsWork, ceil)
	}

	setups := []setup{{name: "1 process, 1 redis-server", processes: 1, rates: o.rates}}
	if o.cluster {
		setups = append(setups, setup{name: "1 process, Redis Cluster (3 masters)", cluster: true, processes: 1, rates: o.extraRates})
	}
	if o.processes > 1 {
		setups = append(setups, setup{name: fmt.Sprintf("%d processes, 1 redis-server", o.processes), processes: o.processes, rates: o.extraRates})
	}
	var rows []string
	for i, st := range setups {
		sdir := filepath.Join(dir, fmt.Sprintf("setup%d", i))
		if err := os.Mkdir(sdir, 0o700); err != nil {
			return err
		}
		h := &harness{o: o, setup: st, dir: sdir, apns: apns, key: key, ceil: ceil}
		r, err := h.run(bin, keyFile, i == 0)
		rows = append(rows, r...)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	if len(setups) > 1 {
		fmt.Println("all setups:")
		fmt.Println()
		fmt.Println(tableHeader)
		for _, r := range rows {
			fmt.Println(r)
		}
		fmt.Println()
	}
	return nil
}

const tableHeader = "| setup | rate (calls/s) | calls | pushes | sustained calls/s | vs apns2 | p50 | p99 | max | allocs/call | bytes/call | redis trips/call | dropped | RSS MiB (peak) | CPU µs/call: jinglepush | redis | harness+APNs |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"

// run starts the setup's Redis and processes, registers the users,
// measures the setup's rates (and, for the first setup, the firehose and
// the soak), stops it all and returns the table rows.
func (h *harness) run(bin, keyFile string, first bool) (rows []string, err error) {
	o, st := h.o, h.setup
	fmt.Printf("## %s\n\n", st.name)
	if st.cluster {
		h.redis, h.redisUp, err = startCluster(h.dir, 3)
	} else {
		var r *child
		var addr string
		r, addr, err = startRedis(h.dir)
		h.redis, h.redisUp = []*child{r}, []string{addr}
	}
	defer func() {
		for _, r := range h.redis {
			r.stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	if h.xmpp, err = listenXMPP(component, secret); err != nil {
		return nil, err
	}
	defer h.xmpp.close()
	addrs := make([]string, len(h.redisUp))
	for i, a := range h.redisUp {
		addrs[i] = strconv.Quote(a)
	}
	for i := range st.processes {
		h.https = append(h.https, "127.0.0.1:"+strconv.Itoa(freePort()))
		cfg := fmt.Sprintf(`[xmpp]
server = %q
domain = %q
secret = %q
served_domains = [%q]
[redis]
addrs = [%s]
[apns]
endpoint = %q
ca_file = %q
workers = %d
[[apns.apps]]
bundle_id = %q
team_id = "TEAM123456"
key_id = "KEY1234567"
key_file = %q
[calls]
# Calls ring longer than the run: the figures are the hot path's, not
# ring timeouts firing (those cost two round trips each, later).
ring_timeout = "10m"
trace_ttl = %q
# One caller calls everyone, many times each: no limits on how often.
one_call_per_caller = false
max_ringing = 0
caller_callee_per_minute = 0
caller_per_minute = 0
[http]
listen = %q
pprof = true
[log]
level = %q
`, h.xmpp.addr(), component, secret, domain, strings.Join(addrs, ", "), h.apns.srv.URL, h.apns.caFile, o.apnsWork,
			bundleID, keyFile, o.traceTTL.String(), h.https[i], o.logLevel)
		cfgPath := filepath.Join(h.dir, fmt.Sprintf("config%d.toml", i))
		if err := writeConfigFor(bin, cfgPath, cfg); err != nil {
			return nil, err
		}
		c, err := startChild("jinglepush", filepath.Join(h.dir, fmt.Sprintf("jinglepush%d.log", i)), bin, "-config", cfgPath)
		if err != nil {
			return nil, err
		}
		defer c.stop()
		h.comps = append(h.comps, c)
	}
	if err := h.xmpp.accept(st.processes, 20*time.Second); err != nil {
		return nil, err
	}
	before, err := usedMemory(h.redisUp)
	if err != nil {
		return nil, err
	}
	if err := h.register(); err != nil {
		return nil, err
	}
	after, err := usedMemory(h.redisUp)
	if err != nil {
		return nil, err
	}
	perDevice := float64(after-before) / float64(o.users)
	fmt.Printf("Redis memory: %.0f bytes per registered device (used_memory %d before and %d after registering %d devices); a million users with a device each: %.0f MiB\n\n",
		perDevice, before, after, o.users, perDevice*1e6/(1<<20))
	h.dropBase = h.scrape("jinglepush_component_dropped_total")

	fmt.Printf("%d offline users with one device (VoIP and regular token) each; jinglepush with apns.workers = %d, log.level = %s\n\n", o.users, o.apnsWork, o.logLevel)
	unaccounted := false
	fmt.Println(tableHeader)
	for _, rate := range st.rates {
		if o.warmup > 0 {
			h.load(rate, o.warmup)
			h.settle()
		}
		r, err := h.phase(rate, o.duration)
		if err != nil {
			return rows, err
		}
		row := r.row(st.name, h.ceil)
		fmt.Println(row)
		rows = append(rows, row)
		unaccounted = unaccounted || r.pushes+int64(r.dropped()) < r.calls
	}
	fmt.Println()
	if unaccounted {
		// Every call written ends as a push or a counted drop; say where
		// the others went.
		fmt.Println("calls neither pushed nor counted as dropped; jinglepush's counters:")
		for _, l := range h.metricLines("jinglepush_calls_", "jinglepush_component_dropped_total", "jinglepush_apns_pushes_total", "jinglepush_apns_dropped_total") {
			fmt.Println("  " + l)
		}
		fmt.Println()
	}
	if first && o.firehose {
		if err := h.firehose(o.duration); err != nil {
			return rows, err
		}
	}
	if first && o.soak > 0 {
		if err := h.soakRun(o.soak); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// register sends every user's register-push-apns command and waits for the
// answers.
func (h *harness) register() error {
	start := time.Now()
	for i := range h.o.users {
		if err := h.xmpp.write(registerIQ("user"+strconv.Itoa(i), domain, component, i, fmt.Sprintf("%064x", i+1), fmt.Sprintf("%064x", 1<<48+i))); err != nil {
			return err
		}
		if i%256 == 255 {
			if err := h.xmpp.flush(); err != nil {
				return err
			}
			// Keep the component's command queues from overflowing.
			for int64(i)-h.xmpp.results.Load()-h.xmpp.errors.Load() > 2048 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	if err := h.xmpp.flush(); err != nil {
		return err
	}
	for deadline := time.Now().Add(2*time.Minute + time.Duration(h.o.users)*time.Millisecond); h.xmpp.results.Load()+h.xmpp.errors.Load() < int64(h.o.users); {
		select {
		case err := <-h.xmpp.closed:
			return fmt.Errorf("the component's stream: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registrations: %d answers of %d", h.xmpp.results.Load()+h.xmpp.errors.Load(), h.o.users)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.xmpp.errors.Load(); n > 0 {
		return fmt.Errorf("%d registrations failed", n)
	}
	fmt.Printf("registered %d devices in %s\n", h.o.users, time.Since(start).Round(time.Millisecond))
	return nil
}

// load writes proposes at rate (0: as fast as possible) for d and returns
// the number of calls written.
func (h *harness) load(rate int, d time.Duration) int64 {
	start := time.Now()
	first := h.seq
	flushBatch := func() {
		_ = h.xmpp.flush()
		now := time.Now()
		for len(h.written) < int(h.seq) {
			h.written = append(h.written, now)
		}
	}
	if rate == 0 {
		// As fast as jinglepush takes them: keep a window of calls in flight
		// (written, not yet pushed or dropped), so the figure is what it
		// sustains rather than how fast its queues overflow.
		base := h.seq - h.apns.total.Load()
		var dropped float64
		var scraped time.Time
		for time.Since(start) < d {
			// Scraping costs jinglepush CPU (the metrics are compressed): rarely.
			if time.Since(scraped) > 250*time.Millisecond {
				dropped = h.scrape("jinglepush_component_dropped_total")
				scraped = time.Now()
			}
			inflight := h.seq - base - h.apns.total.Load() - int64(dropped-h.dropBase)
			if inflight >= h.o.window {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			for range min(h.o.window-inflight, 256) {
				h.writeCall()
			}
			flushBatch()
		}
		return h.seq - first
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for now := range tick.C {
		el := now.Sub(start)
		if el >= d {
			break
		}
		want := first + int64(el.Seconds()*float64(rate))
		for h.seq < want {
			h.writeCall()
		}
		flushBatch()
	}
	return h.seq - first
}

func (h *harness) writeCall() {
	n := h.seq
	h.seq++
	_ = h.xmpp.write(proposeCopy("user"+strconv.Itoa(int(n%int64(h.o.users))), domain, component, n))
}

type metricsSnap struct {
	mallocs, bytes, trips, dropped, apnsDropped float64
	proc                                        procStats // jinglepush
	redis, self                                 procStats // redis-server, this harness (writer and fake APNs)
}

func (h *harness) snap() metricsSnap {
	var m metricsSnap
	m.mallocs = h.scrape("go_memstats_mallocs_total")
	m.bytes = h.scrape("go_memstats_alloc_bytes_total")
	m.trips = h.scrape("jinglepush_redis_roundtrips_total")
	m.dropped = h.scrape("jinglepush_component_dropped_total")
	m.apnsDropped = h.scrape("jinglepush_apns_dropped_total")
	m.proc = sumProcs(h.comps)
	m.redis = sumProcs(h.redis)
	m.self, _ = readProc(os.Getpid())
	return m
}

type phaseResult struct {
	rate          int
	calls, pushes int64
	elapsed       time.Duration
	p50, p99, max time.Duration
	m0, m1        metricsSnap
}

// phase measures one rate.
func (h *harness) phase(rate int, d time.Duration) (phaseResult, error) {
	h.apns.take()
	if h.o.profile != "" {
		done := h.startProfile(fmt.Sprintf("%s-%d.pprof", h.o.profile, rate), d)
		defer func() { <-done }()
	}
	if h.o.cmdStats {
		if err := resetCommandStats(h.redisUp); err != nil {
			return phaseResult{}, err
		}
	}
	m0 := h.snap()
	first := h.seq
	start := time.Now()
	calls := h.load(rate, d)
	if h.o.cmdStats {
		h.printCommandStats(calls)
	}
	// Wait for the pushes still on their way.
	var got map[int64]time.Time
	arrived := map[int64]time.Time{}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		for k, v := range h.apns.take() {
			arrived[k] = v
		}
		m := h.scrape("jinglepush_component_dropped_total")
		if int64(len(arrived))+int64(m-m0.dropped) >= calls {
			break
		}
	}
	got = arrived
	m1 := h.snap()
	r := phaseResult{rate: rate, calls: calls, m0: m0, m1: m1}
	var lats []time.Duration
	var last time.Time
	for n, at := range got {
		if n < first || n >= first+calls {
			continue
		}
		r.pushes++
		lats = append(lats, at.Sub(h.written[n]))
		if at.After(last) {
			last = at
		}
	}
	r.elapsed = last.Sub(start)
	if r.elapsed < d {
		r.elapsed = d
	}
	slices.Sort(lats)
	if len(lats) > 0 {
		r.p50 = lats[len(lats)/2]
		r.p99 = lats[len(lats)*99/100]
		r.max = lats[len(lats)-1]
	}
	return r, nil
}

// printCommandStats prints what Redis ran for the calls of a phase, per
// call: a script's time includes the commands it ran, which have their own
// lines too.
func (h *harness) printCommandStats(calls int64) {
	stats, err := commandStats(h.redisUp)
	if err != nil || calls == 0 {
		fmt.Println("commandstats:", err)
		return
	}
	fmt.Printf("\nRedis commands per call (%d calls):\n\n| command | per call | µs per call | µs each |\n|---|---|---|---|\n", calls)
	for _, st := range stats {
		if st.calls == 0 {
			continue
		}
		fmt.Printf("| %s | %.2f | %.1f | %.2f |\n", st.name, float64(st.calls)/float64(calls),
			float64(st.usec)/float64(calls), float64(st.usec)/float64(st.calls))
	}
	fmt.Println()
}

// settle waits (30 s at most) until jinglepush has nothing queued or in
// flight, so a phase does not start with the backlog of the one before.
func (h *harness) settle() {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		var busy float64
		for _, m := range []string{"jinglepush_component_queue_length", "jinglepush_apns_queue_length", "jinglepush_apns_inflight_requests"} {
			v := h.scrape(m)
			busy += v
		}
		if busy == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A call a stanza worker holds (read, not yet pushed) is in no gauge.
	time.Sleep(200 * time.Millisecond)
}

// dropped is the pushes jinglepush refused (queues full) during the phase.
func (r phaseResult) dropped() float64 {
	return r.m1.dropped - r.m0.dropped + r.m1.apnsDropped - r.m0.apnsDropped
}

func (r phaseResult) row(setup string, ceiling float64) string {
	rate := "full speed"
	if r.rate > 0 {
		rate = strconv.Itoa(r.rate)
	}
	sustained := float64(r.pushes) / r.elapsed.Seconds()
	ratio := "-"
	if ceiling > 0 {
		ratio = fmt.Sprintf("%.2f", sustained/ceiling)
	}
	per := func(a, b float64) string {
		if r.pushes == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", (b-a)/float64(r.pushes))
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	cpu := func(a, b procStats) float64 {
		return float64((b.cpu - a.cpu).Microseconds()) / float64(max(r.pushes, 1))
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f (%.0f) | %.0f | %.0f | %.0f |",
		setup, rate, r.calls, r.pushes, sustained, ratio, ms(r.p50), ms(r.p99), ms(r.max),
		per(r.m0.mallocs, r.m1.mallocs), per(r.m0.bytes, r.m1.bytes), per(r.m0.trips, r.m1.trips),
		r.dropped(),
		float64(r.m1.proc.rssKB)/1024, float64(r.m1.proc.hwmKB)/1024, cpu(r.m0.proc, r.m1.proc), cpu(r.m0.redis, r.m1.redis), cpu(r.m0.self, r.m1.self))
}

// scrape sums metric name over the setup's processes.
func (h *harness) scrape(name string) float64 {
	var sum float64
	for _, addr := range h.https {
		v, _ := scrape(addr, name)
		sum += v
	}
	return sum
}

// metricLines is metricLines for every process of the setup.
func (h *harness) metricLines(prefixes ...string) []string {
	var out []string
	for i, addr := range h.https {
		for _, l := range metricLines(addr, prefixes...) {
			out = append(out, fmt.Sprintf("process %d: %s", i, l))
		}
	}
	return out
}

// sumProcs adds up the memory and CPU of processes.
func sumProcs(cs []*child) procStats {
	var sum procStats
	for _, c := range cs {
		p, _ := readProc(c.cmd.Process.Pid)
		sum.rssKB += p.rssKB
		sum.hwmKB += p.hwmKB
		sum.cpu += p.cpu
	}
	return sum
}

// ceiling pushes with the bare apns2 client, as fast as it goes, to the same
// fake APNs: what the component's own work is compared with.
func (h *harness) ceiling(d time.Duration) float64 {
	pool := x509.NewCertPool()
	pool.AddCert(h.apns.srv.Certificate())
	client := &apns2.Client{
		Host:       h.apns.srv.URL,
		HTTPClient: &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		Token:      &token.Token{AuthKey: h.key, KeyID: "KEY1234567", TeamID: "TEAM123456"},
	}
	payload := []byte(`{"aps":{},"account":"user1@localhost","call":{"id":"x","uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","from":"caller@localhost/pc","caller":"caller@localhost","media":["audio"],"sent_at":1764000000123,"expires_at":1764000045123}}`)
	var ok atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range h.o.apnsWork {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				res, err := client.PushWithContext(ctx, &apns2.Notification{
					DeviceToken: fmt.Sprintf("%064x", 1), Topic: bundleID + ".voip", PushType: apns2.PushTypeVOIP,
					Priority: 10, Expiration: time.Now().Add(time.Minute), Payload: payload,
				})
				if err == nil && res.Sent() {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	h.apns.take()
	return float64(ok.Load()) / time.Since(start).Seconds()
}

// firehose writes mod_service_log copies of chat messages as fast as the
// component reads them and reports how many it discards per CPU second.
func (h *harness) firehose(d time.Duration) error {
	ign0 := h.scrape("jinglepush_component_stanzas_total")
	p0 := sumProcs(h.comps)
	start := time.Now()
	var n int64
	for time.Since(start) < d {
		for range 256 {
			if err := h.xmpp.write(firehoseCopy(domain, component, n)); err != nil {
				return err
			}
			n++
		}
		if err := h.xmpp.flush(); err != nil {
			return err
		}
	}
	// The stanzas are counted as soon as they are read.
	var ign1 float64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ign1 = h.scrape("jinglepush_component_stanzas_total")
		if ign1-ign0 >= float64(n) {
			break
		}
	}
	elapsed := time.Since(start)
	p1 := sumProcs(h.comps)
	cpu := (p1.cpu - p0.cpu).Seconds()
	fmt.Printf("firehose: %d non-call copies in %s: %.0f stanzas/s read, %.0f stanzas per CPU second of jinglepush (%.1f CPU s)\n\n",
		n, elapsed.Round(time.Millisecond), (ign1-ign0)/elapsed.Seconds(), (ign1-ign0)/cpu, cpu)
	return nil
}

// soakRun calls at 1000/s for d and samples jinglepush's RSS.
func (h *harness) soakRun(d time.Duration) error {
	const every = 10 * time.Second
	fmt.Printf("soak: 1000 calls/s for %s, RSS every %s (MiB):\n", d, every)
	var samples []float64
	for el := time.Duration(0); el < d; el += every {
		h.load(1000, every)
		p, err := readProc(h.comps[0].cmd.Process.Pid)
		if err != nil {
			return err
		}
		samples = append(samples, float64(p.rssKB)/1024)
		fmt.Printf("%.1f ", samples[len(samples)-1])
	}
	fmt.Println()
	if len(samples) > 6 {
		steady := samples[6:] // after the first minute
		lo, hi := slices.Min(steady), slices.Max(steady)
		fmt.Printf("after the first minute: min %.1f MiB, max %.1f MiB, spread %.1f%%\n", lo, hi, (hi-lo)/lo*100)
	}
	return nil
}

// startProfile saves jinglepush's CPU profile over the next d to file.
func (h *harness) startProfile(file string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", h.https[0], int(d.Seconds())))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return done
}

// unknownKeyLine finds the keys check-config calls unknown, e.g.
// "calls.trace_ttl: unknown key; [calls] has ...".
var unknownKeyLine = regexp.MustCompile(`(?m)^\s*[a-z_]+\.([a-z_]+): unknown key`)

// writeConfigFor writes cfg for bin, leaving out the keys an older build
// does not know (check-config says which): a before-and-after run measures
// an older binary with the same harness. Those keys only tune what the
// older build does not have.
func writeConfigFor(bin, path, cfg string) error {
	for range 3 {
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		out, err := exec.Command(bin, "check-config", "-config", path).CombinedOutput()
		if err == nil {
			return nil
		}
		unknown := unknownKeyLine.FindAllStringSubmatch(string(out), -1)
		if len(unknown) == 0 {
			return fmt.Errorf("check-config: %s", out)
		}
		for _, m := range unknown {
			cfg = regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(m[1])+` = .*\n`).ReplaceAllString(cfg, "")
		}
	}
	return fmt.Errorf("check-config keeps refusing %s", path)
}
