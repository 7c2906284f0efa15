package main

// Faults provoked for real (issue 11): a redis-server paused with SIGSTOP,
// killed and restarted with and without its data; the jinglepush binary
// killed with SIGKILL during an APNs outage; SIGTERM with Redis down and
// full queues. Each shows that a call still rings once, or is refused with
// a clear reason. They run on Prosody: what they provoke lies behind the
// component stream, the same for both servers.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

func TestFaults(t *testing.T) {
	// One after the other: Prosody takes one connection per component.
	srv := prosodyServers(t, testenv.ProsodyOptions{})

	t.Run("redis paused through a propose: the call rings, once", func(t *testing.T) {
		r := testenv.StartRedis(t)
		s := newStack(t, srv, stackOptions{redis: r})
		bob, alice, ac, d := s.offlineCallee()
		first := uuid.NewString()
		send(t, ac, propose(bob, first))
		s.apns.Wait(t, 1, waitShort)
		send(t, ac, jmi("retract", bob, first))
		s.pushes(2)

		r.Pause()
		paused := time.Now()
		second := uuid.NewString()
		send(t, ac, propose(bob, second))
		// Rung from memory once fail_open_after (2 s) passed, while Redis
		// is still paused.
		got := s.apns.Wait(t, 3, waitShort)
		if r := got[2]; r.Token != d.voip || body(t, r).Call.ID != second {
			t.Fatalf("the call while Redis was paused: %s to %s", r.Body, r.Token)
		}
		if !r.Paused() {
			t.Fatal("Redis resumed before the call rang")
		}
		time.Sleep(time.Until(paused.Add(4 * time.Second))) // the outage lasts 4 s
		r.Resume()
		// The call rung from memory is recorded once Redis answers: its end
		// is seen, and nothing rings twice.
		s.waitMetric(`jinglepush_calls_fail_open_total`, 1)
		testenv.Eventually(t, waitShort, func() bool { return strings.Contains(s.logs(), "redis answers again") }, "the outage to end")
		send(t, ac, jmi("retract", bob, second))
		got = s.pushes(4)
		checkAlert(t, got[3], d.token, second, "missed", "Missed call from "+alice)
		if n := strings.Count(s.logs(), "redis does not answer"); n != 1 {
			t.Errorf("the outage was logged %d times, want once", n)
		}
	})

	t.Run("a push survives its process: killed during an APNs outage, restarted", func(t *testing.T) {
		pushSurvives(t, srv, false)
	})

	t.Run("a push survives its process: killed during an APNs outage, a standby takes over", func(t *testing.T) {
		pushSurvives(t, srv, true)
	})

	t.Run("killed while APNs answers: the call rings again, never not at all", func(t *testing.T) {
		s := newStack(t, srv, stackOptions{process: true})
		bob, _, ac, d := s.offlineCallee()
		// APNs takes its time to answer the first push: the process dies
		// with the push sent and its answer not yet read.
		s.apns.Script(d.voip, testenv.Response{Delay: time.Minute}, testenv.Response{})
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		s.apns.Wait(t, 1, waitShort)
		s.kill()
		s.start()
		got := s.apns.Wait(t, 2, waitShort)
		if got[1].Token != d.voip || got[1].Header.Get("apns-collapse-id") != got[0].Header.Get("apns-collapse-id") {
			t.Errorf("the wake taken over: %v %s", got[1].Header, got[1].Body)
		}
		s.pushes(2)
	})

	t.Run("APNs slower than the lease: the push holds its wake, one push", func(t *testing.T) {
		s := newStack(t, srv, stackOptions{})
		bob, _, ac, d := s.offlineCallee()
		// The answer comes after the wake's lease (calls.lease, 5 s) and
		// within apns.timeout (10 s): the process is alive and its push
		// only slow, so no takeover may push the wake a second time.
		s.apns.Script(d.voip, testenv.Response{Delay: 7 * time.Second})
		send(t, ac, propose(bob, uuid.NewString()))
		s.apns.Wait(t, 1, waitShort)
		s.waitMetric(`jinglepush_apns_pushes_total{kind="voip",result="success"}`, 1)
		if got := s.apns.Requests(); len(got) != 1 {
			t.Fatalf("%d VoIP requests for one slow push, want 1", len(got))
		}
	})

	t.Run("SIGTERM with Redis down and full queues: bounded", func(t *testing.T) {
		r := testenv.StartRedis(t)
		s := newStack(t, srv, stackOptions{redis: r, process: true, xmppTOML: "workers = 1\nqueue_size = 4"})
		bob, _, ac, _ := s.offlineCallee()
		r.Kill()
		for range 40 {
			send(t, ac, propose(bob, uuid.NewString()))
		}
		s.waitMetric(`jinglepush_component_dropped_total{reason="queue_full"}`, 1)
		took, logs := s.terminate()
		t.Logf("stopped in %v", took)
		if took > shutdownTimeout+5*time.Second {
			t.Errorf("SIGTERM took %v, the bound is %v", took, shutdownTimeout)
		}
		if !strings.Contains(logs, "stopped with stanzas not handled") {
			t.Errorf("the stanzas left were not logged:\n%s", logs)
		}
	})

	t.Run("redis restarted with its data: the call goes on", func(t *testing.T) {
		r := testenv.StartRedisWith(t, testenv.RedisOptions{AppendOnly: true})
		s := newStack(t, srv, stackOptions{redis: r})
		bob, alice, ac, d := s.offlineCallee()
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		s.pushes(1)
		r.Kill()
		r.Restart(t)
		s.waitReady()
		send(t, ac, propose(bob, id)) // a late copy: still one push
		send(t, ac, jmi("retract", bob, id))
		got := s.pushes(2)
		checkAlert(t, got[1], d.token, id, "missed", "Missed call from "+alice)
	})

	t.Run("redis restarted empty: registrations are gone until the app registers again", func(t *testing.T) {
		r := testenv.StartRedis(t)
		s := newStack(t, srv, stackOptions{redis: r})
		if !strings.Contains(s.logs(), "redis may lose jinglepush's data") {
			t.Error("a Redis without persistence was not warned of at start")
		}
		if body := s.readyz(); !strings.Contains(body, "warning: redis:") {
			t.Errorf("/readyz does not show the risk:\n%s", body)
		}
		bob, alice := s.user("bob"), s.user("alice")
		bc := s.login(bob, "phone", false)
		s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
		ac := s.login(alice, "pc", false)
		r.RestartEmpty(t)
		s.waitReady()
		bc.Close()
		send(t, ac, propose(bob, uuid.NewString()))
		s.waitMetric(`jinglepush_calls_events_total{action="propose",outcome="created"}`, 1)
		s.settle()
		if n := len(s.apns.Requests()); n != 0 {
			t.Fatalf("%d pushes with no registration left", n)
		}
		// The app registers again on its next connect: its calls ring.
		bc = s.login(bob, "phone", false)
		d := s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
		bc.Close()
		send(t, ac, propose(bob, uuid.NewString()))
		if got := s.pushes(1); got[0].Token != d.voip {
			t.Errorf("after registering again: push to %s", got[0].Token)
		}
	})
}

// pushSurvives: APNs answers 503 for the first seconds of a call; the
// process is killed meanwhile; a restarted process (or a standby that was
// waiting) takes the wake over when its lease runs out, APNs recovers, and
// the device gets its VoIP push before the ring deadline, once.
func pushSurvives(t *testing.T, srv *servers, standby bool) {
	s := newStack(t, srv, stackOptions{process: true})
	bob, _, ac, d := s.offlineCallee()
	s.apns.Script(d.voip, testenv.Response{Status: http.StatusServiceUnavailable, Reason: "ServiceUnavailable"})
	var second *instance
	var secondHTTP string
	if standby {
		second, secondHTTP = s.startSecond()
	}
	id := uuid.NewString()
	start := time.Now()
	send(t, ac, propose(bob, id))
	s.apns.Wait(t, 2, waitShort) // a first attempt and a retry, both refused
	s.kill()
	s.apns.Script(d.voip) // APNs recovers
	if !standby {
		s.start()
	}
	var ok []testenv.Request
	testenv.Eventually(t, 20*time.Second, func() bool {
		ok = ok[:0]
		for _, r := range s.apns.Requests() {
			if r.Token == d.voip && r.Answer.Status == http.StatusOK {
				ok = append(ok, r)
			}
		}
		return len(ok) > 0
	}, "the VoIP push to get through")
	if standby {
		// Settled in Redis by the standby: no process will push it again.
		testenv.Eventually(t, waitShort, func() bool {
			return metricAt(t, secondHTTP, `jinglepush_calls_wakes_settled_total{outcome="delivered"}`) >= 1
		}, "the standby to deliver the wake it took over")
		if !strings.Contains(second.logs.String(), "why=takeover") {
			t.Errorf("the standby did not take the wake over:\n%s", second.logs.String())
		}
	} else {
		s.settle()
	}
	if body(t, ok[0]).Call.ID != id || ok[0].Received.Sub(start) > 20*time.Second {
		t.Errorf("the push that got through: %s after %v", ok[0].Body, ok[0].Received.Sub(start))
	}
	n := 0
	for _, r := range s.apns.Requests() {
		if r.Token == d.voip && r.Answer.Status == http.StatusOK {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d VoIP pushes got through, want 1", n)
	}
}

// logs is the running instance's log so far.
func (s *stack) logs() string {
	s.mu.Lock()
	in := s.running
	s.mu.Unlock()
	if in == nil {
		return ""
	}
	return in.logs.String()
}

// readyz returns the body of /readyz.
func (s *stack) readyz() string {
	s.t.Helper()
	resp, err := http.Get("http://" + s.http + "/readyz")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// terminate sends SIGTERM to the child process and waits for it to exit;
// it returns how long that took and the log.
func (s *stack) terminate() (time.Duration, string) {
	s.t.Helper()
	s.mu.Lock()
	in := s.running
	s.running = nil
	s.mu.Unlock()
	if in == nil || in.cmd == nil {
		s.t.Fatal("terminate needs a child process (stackOptions.process)")
	}
	start := time.Now()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(2 * shutdownTimeout):
		_ = in.cmd.Process.Kill()
		s.t.Fatalf("jinglepush did not stop within %v", 2*shutdownTimeout)
	}
	return time.Since(start), in.logs.String()
}

var listenLine = regexp.MustCompile(`(?m)^listen = ".*"$`)

// startSecond starts a second jinglepush process with the stack's
// configuration (but its own HTTP port). On Prosody it waits as a hot
// standby: the server takes one connection per component. It is stopped at
// cleanup.
func (s *stack) startSecond() (*instance, string) {
	s.t.Helper()
	cfg, err := os.ReadFile(s.cfgPath)
	if err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(s.cfgPath), "second.toml")
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(s.t))
	cfg = listenLine.ReplaceAll(cfg, []byte(`listen = "`+addr+`"`))
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		s.t.Fatal(err)
	}
	in := s.launch(path)
	s.t.Cleanup(func() {
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.done:
		case <-time.After(2 * shutdownTimeout):
			_ = in.cmd.Process.Kill()
		}
		if s.t.Failed() || testenv.Verbose() {
			s.t.Logf("second jinglepush's log:\n%s", in.logs.String())
		}
	})
	testenv.Eventually(s.t, waitShort, func() bool { return strings.Contains(in.logs.String(), "http endpoint listening") }, "the second process to start")
	return in, addr
}

// metricAt reads one metric line from the /metrics of addr (0: absent).
func metricAt(t *testing.T, addr, prefix string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

// offlineCallee sets the plainest scene: bob's iPhone registered with both
// tokens and offline, alice online on her computer, ready to call. It
// returns their bare JIDs, alice's client and bob's device.
func (s *stack) offlineCallee() (bob, alice string, ac *xmppclient.Client, d device) {
	s.t.Helper()
	bob, alice = s.user("bob"), s.user("alice")
	bc := s.login(bob, "phone", false)
	d = s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
	bc.Close()
	return bob, alice, s.login(alice, "pc", false), d
}
