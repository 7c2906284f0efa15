package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFreePort(t *testing.T) {
	lo, hi := portRange()
	seen := make(map[int]bool)
	for range 50 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < lo || p >= hi {
			t.Errorf("port %d outside [%d, %d)", p, lo, hi)
		}
	}
	// A port handed out must be bindable on loopback.
	p := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestFillPlaceholders(t *testing.T) {
	opts, err := ProsodyOptions{Secret: `s"e\cret`}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(RepoRoot(t), prosodyDeployDir)
	cfg, err := os.ReadFile(filepath.Join(dir, prosodyDeployConfig))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(dir, prosodyDeployRules))
	if err != nil {
		t.Fatal(err)
	}
	fill := func(s string) string {
		return fillPlaceholders(s, opts.Domain, opts.ComponentDomain, luaString(opts.Secret))
	}
	gotCfg, gotRules := fill(string(cfg)), fill(string(rules))
	for _, s := range []string{gotCfg, gotRules} {
		// "push.push.": the component domain replaced twice.
		checkLacks(t, "operator file", s, "example.com", "change-me", "push.push.")
	}
	checkContains(t, "config", gotCfg,
		`VirtualHost "localhost" {`,
		`Component "push.localhost" {`,
		`["push.localhost"] = { roster = "get"; presence = "managed_entity"; };`,
		`component_secret = "s\"e\\cret";`,
	)
	checkContains(t, "rules", gotRules, "FORWARD=push.localhost\n", "FORWARD=undeliverable@push.localhost\n")
}

func TestProsodyOptionsDefaults(t *testing.T) {
	o, err := ProsodyOptions{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Domain != "localhost" || o.ComponentDomain != "push.localhost" || o.Password != "pass" || len(o.Secret) < 32 {
		t.Errorf("defaults %+v", o)
	}
	o, err = ProsodyOptions{Domain: "example.net"}.withDefaults()
	if err != nil || o.ComponentDomain != "push.example.net" {
		t.Errorf("component default for example.net: %+v, %v", o, err)
	}
	for _, bad := range []ProsodyOptions{
		{Domain: "Bad Domain"},
		{Domain: "a.b", ComponentDomain: "a.b"},
		{Users: []string{"al ice"}},
		{Users: []string{"bob@x"}},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestRenderProsodyConfig(t *testing.T) {
	o, _ := ProsodyOptions{SmacksHibernation: 1500 * time.Millisecond, ExtraLua: []string{"push_max_errors = 3"}}.withDefaults()
	cfg := renderProsodyConfig(o, "/tmp/x", listeners{c2s: 21000, component: 21001}, false)
	checkContains(t, "config", cfg,
		`c2s_ports = { 21000 }`,
		`component_ports = { 21001 }`,
		`component_interfaces = { "127.0.0.1" }`,
		`interfaces = { "127.0.0.1" }`,
		`c2s_require_encryption = false`,
		`allow_unencrypted_plain_auth = true`,
		`authentication = "internal_plain"`,
		`modules_disabled = { "s2s" }`,
		`data_path = "/tmp/x/data"`,
		`smacks_hibernation_time = 2`,
		"push_max_errors = 3\n",
		`VirtualHost "localhost"`,
		`Include "jinglepush.cfg.lua"`,
	)
	if strings.Contains(cfg, `to = "console"`) {
		t.Error("console log without verbose")
	}
	if i, j := strings.Index(cfg, "push_max_errors"), strings.Index(cfg, "VirtualHost"); i > j {
		t.Error("extra Lua is not in the global section")
	}
}

func TestQuoteString(t *testing.T) {
	for _, tc := range []struct{ in, lua, yaml string }{
		{`plain`, `"plain"`, `"plain"`},
		{`a"b\c`, `"a\"b\\c"`, `"a\"b\\c"`},
		{"line\nx", `"line\010x"`, `"line\x0ax"`},
	} {
		if got := luaString(tc.in); got != tc.lua {
			t.Errorf("luaString(%q) = %s, want %s", tc.in, got, tc.lua)
		}
		if got := yamlString(tc.in); got != tc.yaml {
			t.Errorf("yamlString(%q) = %s, want %s", tc.in, got, tc.yaml)
		}
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, 5*time.Second, func() bool { n++; return n == 3 }, "n to reach %d", 3)
	if n != 3 {
		t.Errorf("cond called %d times", n)
	}
}

func TestLogWriter(t *testing.T) {
	var lines []string
	ft := &fakeTB{TB: t, logf: func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }}
	w := LogWriter(ft, "p: ")
	fmt.Fprint(w, "one\ntw")
	fmt.Fprint(w, "o\nthree")
	if want := []string{"p: one", "p: two"}; fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("lines %q, want %q", lines, want)
	}
	ft.cleanup()
	fmt.Fprint(w, "late\n")
	if want := []string{"p: one", "p: two", "p: three"}; fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("after cleanup: lines %q, want %q", lines, want)
	}
}

// fakeTB captures Logf and Cleanup.
type fakeTB struct {
	testing.TB
	logf     func(string, ...any)
	cleanups []func()
}

func (f *fakeTB) Logf(format string, args ...any) { f.logf(format, args...) }
func (f *fakeTB) Cleanup(fn func())               { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// checkContains reports each of wants that s, the named text, lacks.
func checkContains(t *testing.T, name, s string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %q:\n%s", name, want, s)
		}
	}
}

// checkLacks reports each of nots that s, the named text, holds.
func checkLacks(t *testing.T, name, s string, nots ...string) {
	t.Helper()
	for _, not := range nots {
		if strings.Contains(s, not) {
			t.Errorf("%s holds %q:\n%s", name, not, s)
		}
	}
}
