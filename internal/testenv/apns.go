package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// APNs is a local HTTP/2 TLS server that answers like Apple's push service
// (POST /3/device/<token>). It records every request and answers each token
// from a script, 200 by default.
type APNs struct {
	// URL is https://127.0.0.1:port, the value for apns.endpoint or
	// apns2.Client.Host.
	URL string
	// CAFile is a PEM file holding the server's self-signed certificate, the
	// value for apns.ca_file.
	CAFile string

	srv  *httptest.Server
	quit chan struct{} // closed at cleanup; cuts scripted delays short

	mu       sync.Mutex
	requests []Request
	scripts  map[string][]Response
	arrived  chan struct{} // closed and replaced on every request
}

// Request is one request the fake received.
type Request struct {
	Received time.Time
	Method   string
	Path     string
	// Token is the device token from the path; empty if the path was not
	// /3/device/<token>.
	Token string
	// Header holds every request header; HTTP/2 lower-cases their names,
	// http.Header.Get finds them either way.
	Header     http.Header
	Body       []byte
	Proto      string
	ProtoMajor int
	// ClientCertificate is the TLS client certificate the request came
	// with (certificate auth), nil without one.
	ClientCertificate *x509.Certificate
	// Answer is what the fake answered (or is answering, while Delay runs).
	Answer Response
}

// Response is one scripted answer.
type Response struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Reason goes in the JSON error body, e.g. "Unregistered",
	// "BadDeviceToken", "TooManyRequests".
	Reason string
	// Delay holds the answer back (a slow APNs).
	Delay time.Duration
	// Timestamp (unix milliseconds) is sent with status 410: when the token
	// stopped being valid. Zero means the time of the request.
	Timestamp int64
}

// APNsOption changes how StartAPNs sets the fake up.
type APNsOption func(*httptest.Server)

// RequireClientCert makes the fake refuse TLS connections without a client
// certificate issued by one of pool's CAs, as APNs does for certificate
// auth. The handshake fails with a TLS alert, not an HTTP answer.
func RequireClientCert(pool *x509.CertPool) APNsOption {
	return func(srv *httptest.Server) {
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	}
}

// StartAPNs starts the fake on a free loopback port. It is closed at cleanup.
func StartAPNs(t testing.TB, opts ...APNsOption) *APNs {
	t.Helper()
	a := &APNs{
		quit:    make(chan struct{}),
		scripts: make(map[string][]Response),
		arrived: make(chan struct{}),
	}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serveHTTP))
	a.srv.EnableHTTP2 = true
	for _, o := range opts {
		o(a.srv)
	}
	a.srv.StartTLS()
	t.Cleanup(func() {
		close(a.quit)
		a.srv.Close()
	})
	a.URL = a.srv.URL
	a.CAFile = filepath.Join(t.TempDir(), "apns-ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	if err := os.WriteFile(a.CAFile, block, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return a
}

// Client returns an HTTP client that trusts the fake's certificate and
// speaks HTTP/2 to it, e.g. for &apns2.Client{Host: a.URL, HTTPClient:
// a.Client()}.
func (a *APNs) Client() *http.Client { return a.srv.Client() }

// CertPool returns a pool holding the fake's certificate.
func (a *APNs) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.srv.Certificate())
	return pool
}

// Script sets the answers for token, used in order; the last one repeats.
// It replaces an earlier script for token.
func (a *APNs) Script(token string, responses ...Response) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(responses) == 0 {
		delete(a.scripts, token)
		return
	}
	a.scripts[token] = append([]Response(nil), responses...)
}

// Requests returns a copy of the requests received so far, in arrival order.
func (a *APNs) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Request(nil), a.requests...)
}

// Reset forgets the recorded requests and every script.
func (a *APNs) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = nil
	a.scripts = make(map[string][]Response)
}

// Wait blocks until at least n requests have arrived (since the start or the
// last Reset) and returns all of them; it fails the test after timeout.
func (a *APNs) Wait(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		a.mu.Lock()
		if len(a.requests) >= n {
			reqs := append([]Request(nil), a.requests...)
			a.mu.Unlock()
			return reqs
		}
		got, arrived := len(a.requests), a.arrived
		a.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("testenv: APNs received %d requests within %v, want %d", got, timeout, n)
			return nil
		}
	}
}

type apnsError struct {
	Reason    string `json:"reason"`
	Timestamp int64  `json:"timestamp,omitempty"`
}

func (a *APNs) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	token, isDevice := strings.CutPrefix(r.URL.Path, "/3/device/")
	req := Request{
		Received:   time.Now(),
		Method:     r.Method,
		Path:       r.URL.Path,
		Header:     r.Header.Clone(),
		Body:       body,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.ClientCertificate = r.TLS.PeerCertificates[0]
	}
	if isDevice && token != "" && !strings.Contains(token, "/") {
		req.Token = token
	}

	a.mu.Lock()
	switch {
	case r.Method != http.MethodPost:
		req.Answer = Response{Status: http.StatusMethodNotAllowed, Reason: "MethodNotAllowed"}
	case req.Token == "" && isDevice:
		req.Answer = Response{Status: http.StatusBadRequest, Reason: "MissingDeviceToken"}
	case req.Token == "":
		req.Answer = Response{Status: http.StatusNotFound, Reason: "BadPath"}
	default:
		req.Answer = a.next(token)
	}
	if req.Answer.Status == 0 {
		req.Answer.Status = http.StatusOK
	}
	if req.Answer.Status == http.StatusGone && req.Answer.Timestamp == 0 {
		req.Answer.Timestamp = req.Received.UnixMilli()
	}
	a.requests = append(a.requests, req)
	close(a.arrived)
	a.arrived = make(chan struct{})
	a.mu.Unlock()

	if d := req.Answer.Delay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-a.quit:
			return
		}
	}
	id := r.Header.Get("apns-id")
	if id == "" {
		id = uuid.NewString()
	}
	w.Header().Set("apns-id", id)
	if req.Answer.Status == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(req.Answer.Status)
	e := apnsError{Reason: req.Answer.Reason}
	if req.Answer.Status == http.StatusGone {
		e.Timestamp = req.Answer.Timestamp
	}
	_ = json.NewEncoder(w).Encode(e)
}

// next pops the token's next scripted answer; the last one stays. Call with
// a.mu held.
func (a *APNs) next(token string) Response {
	s := a.scripts[token]
	switch len(s) {
	case 0:
		return Response{Status: http.StatusOK}
	case 1:
		return s[0]
	default:
		a.scripts[token] = s[1:]
		return s[0]
	}
}
