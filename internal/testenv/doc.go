// Package testenv starts the real things jinglepush talks to, for tests: a
// redis-server, a Prosody configured with the operator files in
// deploy/prosody, an ejabberd configured with those in deploy/ejabberd, and
// a local HTTP/2 TLS server that plays APNs. Everything listens on 127.0.0.1
// on free ports, keeps its files in t.TempDir, and is stopped by t.Cleanup.
// Prosody and ejabberd both implement XMPPServer, so a scenario is written
// once and runs on both.
//
// Servers given the same Federation talk to each other over s2s (dialback,
// no TLS), each on its own loopback address (ProsodyOptions.Addr, any of
// 127.0.0.0/8) and a free s2s port, without DNS and without /etc/hosts:
// Prosody through a test module that answers mod_s2s's lookups, ejabberd
// through the federation's own DNS server on 127.0.0.1. Ports are free ports
// like every other listener's, so parallel tests never share one.
//
// Child processes run in their own process group, which is killed when the
// test ends; on Linux they also get SIGKILL from the kernel if the test binary
// dies first (Pdeathsig), so a crashed or timed-out run leaves no server
// behind.
//
// Tests that need a server binary are skipped when it is not installed,
// unless JINGLEPUSH_REQUIRE_SERVERS is set (CI), which makes that a failure.
// Server logs go to files in the test's temporary directory and are written to
// the test log when the test fails; set JINGLEPUSH_TEST_VERBOSE=1 to stream
// them live instead.
//
// No build tag separates these tests: `go test ./...` runs every test whose
// servers are installed, and `make test` (JINGLEPUSH_REQUIRE_SERVERS=1) runs
// them all.
package testenv
