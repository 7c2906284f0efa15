package pushnotify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Tokens of the tests: hex, 64 digits, told apart by their last two.
const (
	tokOK   = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728a1"
	tokGone = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728b2"
	tokBusy = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728c3"
	tokDown = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728d4"
	tokSlow = "0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728e5"

	bundle = "com.example.chat"
)

// memAPNs is an APNs in memory, an http.RoundTripper for the Sender's
// clients: requests never touch the network, so the tests that time retries
// run inside a testing/synctest bubble, on its fake clock. Each token
// follows a script, like testenv.APNs; the last answer repeats.
type memAPNs struct {
	mu      sync.Mutex
	scripts map[string][]memAnswer
	reqs    []memRequest
	active  map[string]int // requests in flight, by apns-topic
	peak    map[string]int // the most ever in flight, by apns-topic
}

type memAnswer struct {
	status int // 0: 200
	reason string
	delay  time.Duration // the answer comes this late, unless the request is cut first
	hang   bool          // no answer until the request is cut
	err    error         // no answer: a network error
}

type memRequest struct {
	at       time.Time
	token    string
	header   http.Header
	body     []byte
	deadline time.Time // of the request's context; zero if none
	answer   memAnswer
}

func newMemAPNs() *memAPNs {
	return &memAPNs{scripts: make(map[string][]memAnswer), active: make(map[string]int), peak: make(map[string]int)}
}

func (f *memAPNs) script(token string, answers ...memAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[token] = answers
}

func (f *memAPNs) requests() []memRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]memRequest(nil), f.reqs...)
}

// want returns the requests for token ("": all of them) and fails t
// unless there are n.
func (f *memAPNs) want(t testing.TB, token string, n int) []memRequest {
	t.Helper()
	reqs := f.requests()
	if token != "" {
		reqs = f.requestsFor(token)
	}
	if len(reqs) != n {
		t.Fatalf("%d requests, want %d", len(reqs), n)
	}
	return reqs
}

// requestsFor returns the requests for token.
func (f *memAPNs) requestsFor(token string) []memRequest {
	var out []memRequest
	for _, r := range f.requests() {
		if r.token == token {
			out = append(out, r)
		}
	}
	return out
}

func (f *memAPNs) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	token := strings.TrimPrefix(r.URL.Path, "/3/device/")
	topic := r.Header.Get("apns-topic")
	f.mu.Lock()
	a := memAnswer{}
	if s := f.scripts[token]; len(s) > 0 {
		a = s[0]
		if len(s) > 1 {
			f.scripts[token] = s[1:]
		}
	}
	req := memRequest{at: time.Now(), token: token, header: r.Header.Clone(), body: body, answer: a}
	req.deadline, _ = r.Context().Deadline()
	f.reqs = append(f.reqs, req)
	f.active[topic]++
	f.peak[topic] = max(f.peak[topic], f.active[topic])
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active[topic]--
		f.mu.Unlock()
	}()

	switch {
	case a.hang:
		<-r.Context().Done()
		return nil, r.Context().Err()
	case a.delay > 0:
		t := time.NewTimer(a.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	if a.err != nil {
		return nil, a.err
	}
	status := a.status
	if status == 0 {
		status = http.StatusOK
	}
	h := http.Header{"Apns-Id": {r.Header.Get("apns-id")}}
	var out []byte
	if status != http.StatusOK {
		out, _ = json.Marshal(map[string]any{"reason": a.reason})
	}
	return &http.Response{
		StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(out)),
		Request: r, ProtoMajor: 2, Proto: "HTTP/2.0",
	}, nil
}

// removals is a sessions.Feedback that remembers the dead tokens it was
// told of; every call still rings.
type removals struct {
	mu   sync.Mutex
	got  []string // "account device token"
	fail error
}

func (r *removals) WakeWanted(context.Context, sessions.WakeKey) (bool, error) { return true, nil }
func (r *removals) Pushed(sessions.PushReport)                                 {}

func (r *removals) TokenDead(_ context.Context, t sessions.DeadToken) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, t.Account+" "+t.DeviceID+" "+t.Token)
	return r.fail == nil, r.fail
}

func (r *removals) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// logBuffer collects log lines from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is a Sender under test with what it talks to.
type harness struct {
	s       *Sender
	reg     *prometheus.Registry
	removed *removals
	logs    *logBuffer
}

// newKey makes a P-256 signing key, as in a .p8 file.
func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tokenApp is an app with token auth.
func tokenApp(t testing.TB, bundleID string) App {
	return App{BundleID: bundleID, Environment: Production, TeamID: "TEAM123456", KeyID: "KEY1234567", AuthKey: newKey(t)}
}

// start builds a Sender that sends through rt (nil: the real HTTP/2
// transport) and closes it at cleanup. cfg gets one token-auth app when it
// has none.
func start(t *testing.T, rt http.RoundTripper, cfg Config) *harness {
	t.Helper()
	if cfg.Apps == nil {
		cfg.Apps = []App{tokenApp(t, bundle)}
	}
	cfg.roundTripper = rt
	h := &harness{reg: prometheus.NewRegistry(), removed: &removals{}, logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, h.removed, log, h.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
		if t.Failed() {
			t.Logf("sender log:\n%s", h.logs)
		}
	})
	return h
}

// push queues a push and fails the test if Push refuses it.
func (h *harness) push(t testing.TB, n Notification) {
	t.Helper()
	if err := h.s.Push(context.Background(), n); err != nil {
		t.Fatalf("Push: %v", err)
	}
}

// count reads one series of a counter vector.
func count(c *prometheus.CounterVec, labels ...string) int {
	return int(testutil.ToFloat64(c.WithLabelValues(labels...)))
}

// voipPush is a VoIP push for a call ringing until deadline.
func voipPush(token string, deadline time.Time) Notification {
	c := Call{
		ID: "c1", UUID: "3f1c6a0e-7b0e-4d55-9d1e-8f7b1c2d3e4f", From: "alice@example.com/phone", Caller: "alice@example.com",
		Media: []string{"audio"}, SentAt: time.Now(), ExpiresAt: deadline,
	}
	return Notification{
		Kind: KindVoIP, Token: token, BundleID: bundle, Environment: Production,
		CollapseID: c.UUID, Expiration: deadline, Deadline: deadline,
		Payload: VoIPPayload("bob@example.com", c),
		Account: "bob@example.com", DeviceID: "iphone", CallID: c.ID,
	}
}

// jwtClaims decodes the claims of a bearer token without checking it.
func jwtClaims(t testing.TB, authorization string) (iat int64, iss string) {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(authorization, "bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("authorization %q is not a bearer JWT", authorization)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Iat int64  `json:"iat"`
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Iat, c.Iss
}

// wantCount fails t unless the series of c with labels counted want.
func wantCount(t testing.TB, c *prometheus.CounterVec, want int, labels ...string) {
	t.Helper()
	if got := count(c, labels...); got != want {
		t.Errorf("%s = %d, want %d", strings.Join(labels, ","), got, want)
	}
}
