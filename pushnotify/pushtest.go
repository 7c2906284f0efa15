package pushnotify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/jinglepush/jinglepush/sessions"
)

// TestPush is the one push of `jinglepush push-test`: a push of Kind for a
// made-up call, built by the code that builds the pushes of real calls
// (decisions.go), so what APNs answers is what a real call would get.
type TestPush struct {
	Kind        Kind   // KindVoIP, KindAlert (an incoming-call alert) or KindBackground (answered elsewhere)
	Token       string // the device token, hex: a PushKit token for KindVoIP
	BundleID    string // "": the first app
	Environment string // Production or Sandbox; "": the app's
	Account     string // the callee the push names
	Caller      string // the caller's bare JID
	Ring        time.Duration
}

// TestResult is the request as it went out and what APNs answered.
type TestResult struct {
	Push   Notification
	URL    string
	Header http.Header // as sent, the real JWT in authorization
	Body   []byte
	// Sent is false in dry runs: the request was built, not sent.
	Sent      bool
	Status    int
	Reason    string
	APNsID    string    // of APNs's answer
	Timestamp time.Time // with 410: since when the token is invalid
	Latency   time.Duration
	Err       error // the request got no answer
}

var errNotSent = errors.New("pushnotify: dry run")

// SendTest sends one push at once, outside the queue and without retries:
// the answer, whatever it is, is the result. A dead token is not reported
// back. It fails without sending for a push APNs would refuse whenever it
// is sent (an unknown app, a token that is not hex).
func (s *Sender) SendTest(ctx context.Context, p TestPush) (TestResult, error) {
	app := s.apps[p.BundleID]
	if p.BundleID == "" && len(s.cfg.Apps) > 0 {
		app = s.apps[s.cfg.Apps[0].BundleID]
	}
	if app == nil {
		return TestResult{}, fmt.Errorf("%w: %s", ErrUnknownApp, p.BundleID)
	}
	env := p.Environment
	if env == "" {
		env = app.Environment
	}
	now := time.Now()
	call := sessions.Call{
		Account: p.Account, Caller: p.Caller, ID: uuid.NewString(), From: p.Caller + "/push-test",
		Media: []string{"audio"}, Created: now, Deadline: now.Add(p.Ring),
	}
	dev := sessions.Device{ID: "push-test", BundleID: app.BundleID, Environment: env}
	var n Notification
	switch p.Kind {
	case KindVoIP:
		dev.VoIPToken = p.Token
		n = s.wakeNotification(sessions.Wake{Call: call, Device: dev, Kind: sessions.WakeVoIP, Why: sessions.WhyPresence})
	case KindAlert:
		dev.Token = p.Token
		n = s.wakeNotification(sessions.Wake{Call: call, Device: dev, Kind: sessions.WakeAlert, Why: sessions.WhyPresence})
	case KindBackground:
		dev.Token = p.Token
		n, _ = s.endNotification(sessions.CallEnd{Call: call, Device: dev, State: sessions.EndAnswered})
	default:
		return TestResult{}, fmt.Errorf("%w: kind %q", ErrInvalid, p.Kind)
	}
	n.Wanted, n.Report = nil, nil // one attempt, nothing told to sessions
	if _, err := n.check(); err != nil {
		return TestResult{}, err
	}
	n = complete(n, app, s.cfg.DefaultDeadline)

	// The request goes over the app's own client (its connection, its
	// JWT), through a transport that keeps a copy of what was sent.
	capture := &capturing{}
	ac := &apns2.Client{Host: s.host(n.Environment)}
	if c := s.client(clientKey{n.BundleID, n.Environment}); c != nil {
		ac.Host, ac.Token, ac.Certificate = c.apns.Host, c.apns.Token, c.apns.Certificate
		capture.next = c.apns.HTTPClient.Transport
	} else if a := s.runningApp(n.BundleID); a.AuthKey != nil {
		// A dry run with a key shows the JWT it would send.
		ac.Token = &token.Token{AuthKey: a.AuthKey, KeyID: a.KeyID, TeamID: a.TeamID}
	}
	ac.HTTPClient = &http.Client{Transport: capture}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	res, err := ac.PushWithContext(ctx, n.apns())
	r := TestResult{Push: n, Latency: time.Since(start), Sent: capture.next != nil}
	if capture.req != nil {
		r.URL, r.Header, r.Body = capture.req.URL.String(), capture.req.Header, capture.body
	}
	switch {
	case !r.Sent:
		r.Latency = 0
	case err != nil:
		r.Err = errors.New(redact(err.Error(), n.Token))
	default:
		r.Status, r.Reason, r.APNsID, r.Timestamp = res.StatusCode, res.Reason, res.ApnsID, res.Timestamp.Time
	}
	return r, nil
}

// runningApp is the app with the credentials it runs with now.
func (s *Sender) runningApp(bundleID string) App {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	for _, a := range s.running {
		if a.BundleID == bundleID {
			return a
		}
	}
	return App{}
}

// host is the APNs host of an environment, or the configured endpoint.
func (s *Sender) host(env string) string {
	switch {
	case s.cfg.Endpoint != "":
		return strings.TrimRight(s.cfg.Endpoint, "/")
	case env == Sandbox:
		return apns2.HostDevelopment
	}
	return apns2.HostProduction
}

// capturing is a RoundTripper that copies each request, then sends it on
// through next (nil: not at all, for dry runs).
type capturing struct {
	next http.RoundTripper
	req  *http.Request
	body []byte
}

func (c *capturing) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	c.req, c.body = r.Clone(r.Context()), body
	if c.next == nil {
		return nil, errNotSent
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return c.next.RoundTrip(r)
}
