package main

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// fakeAPNs answers every push with 200 at once and records when the push for
// each call arrived, for the latency figures.
type fakeAPNs struct {
	srv    *httptest.Server
	caFile string
	total  atomic.Int64

	mu      sync.Mutex
	arrived map[int64]time.Time // call number → arrival
}

func startAPNs(caFile string) (*fakeAPNs, error) {
	a := &fakeAPNs{arrived: make(map[int64]time.Time)}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.EnableHTTP2 = true
	a.srv.StartTLS()
	block := &pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	a.caFile = caFile
	return a, nil
}

var idKey = []byte(`"id":"c`)

func (a *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(r.Body)
	a.total.Add(1)
	// Calls of the harness have ids "c<number>".
	if i := bytes.Index(body, idKey); i >= 0 {
		rest := body[i+len(idKey):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if n, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				a.mu.Lock()
				if _, dup := a.arrived[n]; !dup {
					a.arrived[n] = now
				}
				a.mu.Unlock()
			}
		}
	}
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000000")
	w.WriteHeader(http.StatusOK)
}

// take returns and forgets the arrivals so far.
func (a *fakeAPNs) take() map[int64]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	got := a.arrived
	a.arrived = make(map[int64]time.Time, len(got))
	return got
}

func (a *fakeAPNs) close() { a.srv.Close() }
