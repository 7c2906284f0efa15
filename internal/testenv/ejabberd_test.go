package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEditEjabberdDeployConfig(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(RepoRoot(t), ejabberdDeployDir, ejabberdDeployConfig))
	if err != nil {
		t.Fatal(err)
	}
	o, err := EjabberdOptions{Secret: `s"e\cret`}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, notifyOn := range []bool{true, false} {
		got := editEjabberdDeployConfig(string(src), o, 21001, notifyOn)
		checkLacks(t, "operator file", got, "example.com", "change-me", "port: 5347", "mod_privilege:")
		checkContains(t, "operator file", got,
			"    port: 21001\n",
			"    ip: \"127.0.0.1\"\n",
			"    module: ejabberd_service\n",
			"      push.localhost:\n        password: \"s\\\"e\\\\cret\"\n",
			"  mod_service_log:\n    loggers:\n      - push.localhost\n",
			"  mod_push:\n",
		)
		if strings.Contains(got, "notify_on: all") != notifyOn {
			t.Errorf("notify_on %v:\n%s", notifyOn, got)
		}
	}
}

// With mod_jinglepush the harness deletes the mod_service_log lines, as the
// file tells operators to, and keeps everything else.
func TestEditEjabberdDeployConfigModule(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(RepoRoot(t), ejabberdDeployDir, ejabberdDeployConfig))
	if err != nil {
		t.Fatal(err)
	}
	o, err := EjabberdOptions{JinglepushModule: true, Addr: "127.0.0.3"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	got := editEjabberdDeployConfig(string(src), o, 21001, true)
	checkLacks(t, "operator file", got, "mod_service_log:", "loggers:")
	checkContains(t, "operator file", got, "  mod_push:\n", "    notify_on: all\n", "    ip: \"127.0.0.3\"\n", "      push.localhost:\n")
}

func TestEjabberdHasNotifyOn(t *testing.T) {
	for v, want := range map[string]bool{
		"23.01-1":          false,
		"23.04":            false,
		"23.10":            true,
		"24.12-3~bpo12+1":  true,
		"25.03":            true,
		"not a version":    true,
		"21.01-2+deb11u1x": false,
	} {
		if got := ejabberdHasNotifyOn(v); got != want {
			t.Errorf("ejabberdHasNotifyOn(%q) = %v", v, got)
		}
	}
}

func TestRenderEjabberdConfig(t *testing.T) {
	o, _ := EjabberdOptions{ResumeTimeout: 1500 * time.Millisecond, MAM: true}.withDefaults()
	cfg := renderEjabberdConfig(o, listeners{c2s: 21000}, []string{"/tmp/x/conf/jinglepush.yml"}, false)
	checkContains(t, "config", cfg,
		"loglevel: info\n",
		"hosts:\n  - \"localhost\"\n",
		"    port: 21000\n    ip: \"127.0.0.1\"\n    module: ejabberd_c2s\n    starttls: false\n",
		"  mod_offline: {}\n",
		"  mod_stream_mgmt:\n    resend_on_timeout: if_offline\n    resume_timeout: 2\n",
		"  mod_mam:\n    default: always\n",
		"include_config_file:\n  \"/tmp/x/conf/jinglepush.yml\"\n",
	)
	// What the operator file brings must not be loaded twice: ejabberd
	// refuses a duplicated module.
	checkLacks(t, "config", cfg, "mod_push", "mod_service_log", "ejabberd_service", "mod_privilege", "shaper")
	o.MAM, o.ResumeTimeout = false, 0
	cfg = renderEjabberdConfig(o, listeners{c2s: 21000}, []string{"/tmp/x/conf/jinglepush.yml"}, true)
	if !strings.Contains(cfg, "loglevel: debug\n") || strings.Contains(cfg, "mod_mam") || strings.Contains(cfg, "resume_timeout") {
		t.Errorf("debug, no MAM, default resume_timeout:\n%s", cfg)
	}
}

func TestRenderEjabberdctlConfig(t *testing.T) {
	cfg := renderEjabberdctlConfig("jp-1@localhost", "c00k1e", 21002)
	checkContains(t, "ejabberdctl.cfg", cfg,
		"ERLANG_NODE=jp-1@localhost\n",
		"ERL_DIST_PORT=21002\n",
		"ERL_OPTIONS=\"-setcookie c00k1e\"\n",
		"EXEC_CMD=as_current_user\n",
	)
}

func TestEjabberdLogErrors(t *testing.T) {
	dir := t.TempDir()
	log := `2026-11-22 07:19:01.778720+00:00 [info] <0.124.0>@ejabberd_config:load/1:82 Loading configuration
2026-11-22 07:19:02.340739+00:00 [error] <0.334.0>@ejabberd_listener:report_socket_error/3:481 Failed to open socket
2026-11-22 07:19:02.340915+00:00 [error] <0.333.0>@supervisor:start_children/2:392 SUPERVISOR REPORT:
    supervisor: {local,ejabberd_listener}
    reason: eaddrinuse

2026-11-22 07:19:02.341000+00:00 [warning] <0.346.0>@mod_push:notify/5:539 disabling push
    a continuation of a warning
2026-11-22 07:19:02.345986+00:00 [critical] <0.124.0>@ejabberd_app:start/2:68 Failed to start ejabberd application
`
	path := filepath.Join(dir, "ejabberd.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &Ejabberd{serverLog: serverLog{name: "ejabberd", path: path}}
	errs := e.LogErrors()
	if len(errs) != 3 {
		t.Fatalf("%d entries: %q", len(errs), errs)
	}
	if !strings.HasSuffix(errs[1], "SUPERVISOR REPORT:\n    supervisor: {local,ejabberd_listener}\n    reason: eaddrinuse") {
		t.Errorf("continuation lines: %q", errs[1])
	}
	if !strings.Contains(errs[2], "[critical]") {
		t.Errorf("critical entry: %q", errs[2])
	}
}

func TestErlString(t *testing.T) {
	if got := erlString(`/tmp/a "b"\c`); got != `"/tmp/a \"b\"\\c"` {
		t.Errorf("erlString: %s", got)
	}
}
