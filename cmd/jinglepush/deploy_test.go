package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jinglepush/jinglepush/component"
	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/pushnotify"
	"github.com/jinglepush/jinglepush/sessions"
)

// The operator files of deploy/: the Prometheus rules and their unit
// tests (promtool), the Grafana dashboard, the systemd unit
// (systemd-analyze), and that every metric the rules and the dashboard
// query is one jinglepush exports. The tools come from Debian's prometheus
// and systemd packages; without them these tests skip, unless
// JINGLEPUSH_REQUIRE_SERVERS is set (make test).

func deployFile(t *testing.T, parts ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot(t), "deploy"}, parts...)...)
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool := testenv.RequireBinary(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = deployFile(t, "prometheus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// dashboardQueries returns every PromQL expression of the dashboard.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(deployFile(t, "grafana", "jinglepush.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("jinglepush.json: %v", err)
	}
	var exprs []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: no query on the dashboard's Prometheus", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if dash.UID == "" || len(exprs) < 10 {
		t.Fatalf("dashboard uid %q with %d queries", dash.UID, len(exprs))
	}
	return exprs
}

// The dashboard's queries are PromQL that Prometheus parses: promtool
// checks them as recording rules, Grafana's variables filled in.
func TestDashboard(t *testing.T) {
	t.Parallel()
	exprs := dashboardQueries(t)
	promtool := testenv.RequireBinary(t, "promtool")
	fill := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(fill.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	rules := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(rules, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries: %v\n%s", err, out)
	}
}

var metricName = regexp.MustCompile(`\b(?:jinglepush|process|go)_[a-z0-9_]+\b`)

// Every metric that the rules and the dashboard query, or that their texts
// name, is one jinglepush exports.
func TestQueriedMetricsExist(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile(deployFile(t, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	described := describedMetrics(t)
	sources := map[string]string{"alerts.yml": string(rules), "jinglepush.json": strings.Join(dashboardQueries(t), "\n")}
	for file, text := range sources {
		seen := map[string]bool{}
		for _, name := range metricName.FindAllString(text, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && described[b] {
					base = b
				}
			}
			if !described[base] && !seen[name] {
				t.Errorf("%s queries %s, which jinglepush does not export", file, name)
			}
			seen[name] = true
		}
		if len(seen) < 8 {
			t.Errorf("%s names only %d metrics", file, len(seen))
		}
	}
}

// describedMetrics lists every metric jinglepush registers, series or not
// yet: the collectors serve registers, built the same way, asked to
// describe themselves. TestOperatorCommands checks the list against a
// running jinglepush's /metrics.
func describedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := &describer{names: map[string]bool{}}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	rdb := newRedisClient(RedisConfig{Addrs: []string{"127.0.0.1:1"}})
	t.Cleanup(func() { rdb.Close() })
	sessions.InstrumentRedis(rdb, rec)
	store := sessions.NewStore(rdb, "describe:", sessions.StoreOptions{})
	sender, err := pushnotify.New(pushnotify.Config{Apps: []pushnotify.App{{BundleID: bundleID}}, DryRun: true}, store, nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close(t.Context()) })
	svc := sessions.NewService(store, sender, nil, sessions.Config{ServedDomains: []string{"example.com"}}, nil, rec)
	if _, err := component.New(component.Config{Server: "127.0.0.1:1", Domain: "push.example.com", Secret: "s", ServedDomains: []string{"example.com"}}, svc, nil, rec); err != nil {
		t.Fatal(err)
	}
	newReloadMetrics(rec)
	promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{Registry: rec}) // its error counter
	return rec.names
}

// describer is a Registerer that keeps the names its collectors describe.
type describer struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describer) Unregister(prometheus.Collector) bool { return false }

// liveMetrics lists the metric families a running jinglepush exports.
func liveMetrics(t *testing.T, s *stack) []string {
	t.Helper()
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var names []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# TYPE "); ok {
			names = append(names, strings.Fields(rest)[0])
		}
	}
	sort.Strings(names)
	if len(names) < 20 {
		t.Fatalf("/metrics has %d families", len(names))
	}
	return names
}

// The unit file, checked by systemd-analyze in a temporary root that holds
// this machine's unit files (for the targets it names) and stand-ins for
// the programs it runs: the check then needs no running systemd, no
// jinglepush user and no installed binary, and is the same on every
// machine. verify prints a line for every setting it cannot read (and
// still exits 0), so any output fails the test. security scores the
// hardening offline: 0 is locked down, 10 is none; 2 is the most allowed.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze := testenv.RequireBinary(t, "systemd-analyze")
	unit, err := os.ReadFile(deployFile(t, "systemd", "jinglepush.service"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	mustWrite := func(path string, data []byte, mode os.FileMode) {
		t.Helper()
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	units, _ := filepath.Glob("/usr/lib/systemd/system/*")
	if len(units) == 0 {
		units, _ = filepath.Glob("/lib/systemd/system/*")
	}
	for _, u := range units {
		if st, err := os.Stat(u); err == nil && st.Mode().IsRegular() {
			b, err := os.ReadFile(u)
			if err != nil {
				continue
			}
			mustWrite(filepath.Join("usr/lib/systemd/system", filepath.Base(u)), b, 0o644)
		}
	}
	mustWrite("etc/systemd/system/jinglepush.service", unit, 0o644)
	programs := 0
	for _, line := range strings.Split(string(unit), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(key, "Exec") {
			continue
		}
		prog := strings.Fields(strings.TrimLeft(value, "-@:+!"))[0]
		if !filepath.IsAbs(prog) {
			t.Errorf("%s runs %s: give programs by absolute path", key, prog)
			continue
		}
		mustWrite(prog, []byte("#!/bin/sh\n"), 0o755)
		programs++
	}
	if programs < 2 {
		t.Errorf("the unit runs %d programs; want ExecStart and ExecReload", programs)
	}
	for _, want := range []string{"User=jinglepush", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure",
		"ExecReload=/bin/kill -HUP $MAINPID", "-config /etc/jinglepush/config.toml"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}

	out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, "jinglepush.service").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", "--root="+root, "jinglepush.service").CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v (exposure over 2.0)\n%s", err, out)
	}
}

// /debug/pprof/ is served only when [http] pprof is on.
func TestPprofOptIn(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		srv := httptest.NewServer(httpHandler(prometheus.NewRegistry(), nil, nil, nil, on))
		resp, err := http.Get(srv.URL + "/debug/pprof/")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want {
			t.Errorf("pprof = %v: /debug/pprof/ answers %d, want %d", on, resp.StatusCode, want)
		}
	}
}
