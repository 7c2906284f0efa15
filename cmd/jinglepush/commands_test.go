package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// jp runs one jinglepush command in this process, as main would.
func jp(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	code = run(ctx, args, environ, &out, &errOut)
	return code, out.String(), errOut.String()
}

// The operator's commands against a real call: Prosody, Redis and the
// local APNs, with the configuration of the jinglepush that handled it.
func TestOperatorCommands(t *testing.T) {
	srv := prosodyServers(t, testenv.ProsodyOptions{})
	s := newStack(t, srv, stackOptions{})
	bob, alice, ac, d := s.hibernatedCallee()
	id := uuid.NewString()
	send(t, ac, propose(bob, id))
	s.pushes(1)
	send(t, ac, jmi("retract", bob, id))
	s.pushes(2) // the missed-call alert

	t.Run("trace", func(t *testing.T) {
		code, out, errOut := jp(t, nil, "trace", "-config", s.cfgPath, bob, id)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		t.Logf("jinglepush trace:\n%s", out)
		for _, want := range []string{
			"call " + id + " from " + alice + "/pc to " + bob,
			"state    cancelled",
			"woken    iphone voip delivered",
			"created  call created: from=" + alice + "/pc media=audio",
			"iphone woken (voip): ",
			"push     voip push to iphone: success (status=200 latency=",
			"ended    ended cancelled by retract, devices woken: 1",
			"push     alert push to iphone: success (status=200",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		// The same by CALLER/CALL-ID, as JSON.
		code, out, _ = jp(t, nil, "trace", "--json", "-config", s.cfgPath, bob, alice+"/"+id)
		var v struct {
			State  string
			Events []struct{ Event, Text, Explain string }
		}
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.State != "cancelled" || len(v.Events) < 5 || v.Events[0].Event != "created" {
			t.Errorf("exit %d, JSON %s", code, out)
		}
		// The recent calls.
		code, out, _ = jp(t, nil, "trace", "-config", s.cfgPath, bob)
		if code != 0 || !strings.Contains(out, alice) || !strings.Contains(out, id) || !strings.Contains(out, "cancelled") {
			t.Errorf("exit %d, list:\n%s", code, out)
		}
		// Calls Redis knows nothing of.
		if code, _, errOut := jp(t, nil, "trace", "-config", s.cfgPath, bob, "no-such-call"); code != 1 || !strings.Contains(errOut, "CALLER/CALL-ID") {
			t.Errorf("unknown call: exit %d, %s", code, errOut)
		}
		if code, _, errOut := jp(t, nil, "trace", "-config", s.cfgPath, bob, alice+"/no-such-call"); code != 1 || !strings.Contains(errOut, "Redis holds nothing") {
			t.Errorf("unknown caller/call: exit %d, %s", code, errOut)
		}
	})

	t.Run("devices", func(t *testing.T) {
		code, out, errOut := jp(t, nil, "devices", "-config", s.cfgPath, bob)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{bob + ": 1 device", "iphone", d.voip[:8] + "…", d.token[:8] + "…", bundleID, "production", "phone"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		if strings.Contains(out, d.voip) || strings.Contains(out, d.secret) {
			t.Errorf("a whole token or the secret is shown:\n%s", out)
		}
		code, out, _ = jp(t, nil, "devices", "-config", s.cfgPath, bob, "--json")
		var v []struct {
			ID, Resource string
			Registered   time.Time
			Expires      time.Time
		}
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || len(v) != 1 || v[0].ID != "iphone" || v[0].Resource != "phone" ||
			time.Since(v[0].Registered) > time.Minute || v[0].Expires.Sub(v[0].Registered) != 90*24*time.Hour {
			t.Errorf("exit %d, JSON %s", code, out)
		}
		if code, out, errOut := jp(t, nil, "devices", "-config", s.cfgPath, bob, "--remove", "iphone"); code != 0 || !strings.Contains(out, "removed device iphone") {
			t.Errorf("remove: exit %d, %s%s", code, out, errOut)
		}
		if _, out, _ := jp(t, nil, "devices", "-config", s.cfgPath, bob); !strings.Contains(out, "has no devices") {
			t.Errorf("after the removal:\n%s", out)
		}
		if code, _, errOut := jp(t, nil, "devices", "-config", s.cfgPath, bob, "--remove", "iphone"); code != 1 || !strings.Contains(errOut, `no device "iphone"`) {
			t.Errorf("removing it again: exit %d, %s", code, errOut)
		}
		if code, _, errOut := jp(t, nil, "devices", "-config", s.cfgPath, bob+"/phone"); code != 1 || !strings.Contains(errOut, "names a resource") {
			t.Errorf("a full JID: exit %d, %s", code, errOut)
		}
	})

	t.Run("push-test", func(t *testing.T) {
		tok := token()
		before := len(s.apns.Requests())
		code, out, errOut := jp(t, nil, "push-test", "-config", s.cfgPath, "--kind", "voip", tok)
		if code != 0 {
			t.Fatalf("exit %d:\n%s%s", code, out, errOut)
		}
		reqs := s.apns.Requests()
		if len(reqs) != before+1 || reqs[before].Token != tok {
			t.Fatalf("%d requests after push-test, want %d to the token", len(reqs), before+1)
		}
		r := reqs[before]
		for _, want := range []string{
			"POST " + s.apns.URL + "/3/device/" + tok[:8] + "…",
			"apns-push-type: voip", "apns-topic: " + bundleID + ".voip", "apns-priority: 10",
			"apns-id: " + r.Header.Get("apns-id"),
			"apns-collapse-id: " + r.Header.Get("apns-collapse-id"),
			`authorization: bearer <JWT {"alg":"ES256","kid":"KEY1234567"`,
			`"caller": "push-test@` + s.info.ComponentDomain + `"`,
			"APNs answered 200 accepted in ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		if strings.Contains(out, tok) || strings.Contains(out, strings.Split(r.Header.Get("authorization"), ".")[2]) {
			t.Errorf("the whole token or the JWT's signature is shown:\n%s", out)
		}
		var b pushBody
		if err := json.Unmarshal(r.Body, &b); err != nil || b.Call.UUID == "" || b.Account != "push-test@"+s.info.Domain {
			t.Errorf("body %s", r.Body)
		}

		// APNs refuses: exit 1, the reason, its timestamp and a hint.
		dead := token()
		s.apns.Script(dead, testenv.Response{Status: http.StatusGone, Reason: "Unregistered"})
		code, out, _ = jp(t, nil, "push-test", "-config", s.cfgPath, "--kind", "alert", "--sandbox", dead)
		if code != 1 || !strings.Contains(out, "APNs answered 410 Unregistered") || !strings.Contains(out, "timestamp: ") || !strings.Contains(out, "hint: ") ||
			!strings.Contains(out, "apns-push-type: alert") || !strings.Contains(out, "sandbox") {
			t.Errorf("410: exit %d:\n%s", code, out)
		}

		// A dry run prints the request and sends nothing.
		before = len(s.apns.Requests())
		code, out, _ = jp(t, []string{"JINGLEPUSH_APNS_DRY_RUN=true"}, "push-test", "-config", s.cfgPath, "--kind", "background", "--token", tok)
		if code != dryRunExit || !strings.Contains(out, "apns-push-type: background") || !strings.Contains(out, "not sent") || len(s.apns.Requests()) != before {
			t.Errorf("dry run: exit %d:\n%s", code, out)
		}

		// Command lines that cannot work.
		for _, args := range [][]string{
			{"push-test", "-config", s.cfgPath},
			{"push-test", "-config", s.cfgPath, "--kind", "silent", tok},
			{"push-test", "-config", s.cfgPath, "--sandbox", "--production", tok},
			{"push-test", "-config", s.cfgPath, tok, tok},
		} {
			if code, _, _ := jp(t, nil, args...); code != 2 {
				t.Errorf("%q: exit %d, want 2", args, code)
			}
		}
		if code, _, errOut := jp(t, nil, "push-test", "-config", s.cfgPath, "not-hex"); code != 1 || !strings.Contains(errOut, "hex") {
			t.Errorf("a bad token: exit %d, %s", code, errOut)
		}
	})

	t.Run("metrics exported are those described", func(t *testing.T) {
		described := describedMetrics(t)
		for _, name := range liveMetrics(t, s) {
			if !described[name] {
				t.Errorf("/metrics exports %s, which describedMetrics does not know: add its collector there", name)
			}
		}
	})
}
