package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
)

var (
	portsMu   sync.Mutex
	portsUsed = make(map[int]bool) // handed out by this process
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// There is an unavoidable race: the port is free when FreePort checks it, and
// the server that is meant to take it binds it later; anything may take it in
// between. FreePort narrows the window three ways:
//   - it picks ports below the kernel's ephemeral range
//     (net.ipv4.ip_local_port_range), where outgoing connections, ours
//     included, never get a port automatically; binding port 0 would hand out
//     exactly the ports the next outgoing connection is likely to receive;
//   - it picks at random, so parallel test binaries rarely try the same port;
//   - it never returns the same port twice in one process.
//
// The starters in this package also retry with new ports when a server
// reports that its port is taken.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortOn(t, loopback)
}

// FreePortOn is FreePort for another loopback address, such as 127.0.0.2
// (all of 127.0.0.0/8 is loopback on Linux).
func FreePortOn(t testing.TB, addr string) int {
	t.Helper()
	p, err := freePort(addr)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// loopback is the address servers listen on unless told otherwise.
const loopback = "127.0.0.1"

func freePort(addr string) (int, error) {
	lo, hi := portRange()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if portsUsed[p] {
			continue
		}
		if portFree(addr, p) {
			portsUsed[p] = true
			return p, nil
		}
	}
	// Fall back to a kernel-assigned port: racier, but better than nothing.
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			return 0, fmt.Errorf("no free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !portsUsed[p] {
			portsUsed[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s", addr)
}

func portFree(addr string, p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// portRange returns [lo, hi) below the ephemeral range, or above it if
// the space below is too small.
func portRange() (lo, hi int) {
	ephLo, ephHi := 32768, 60999 // Linux default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if n, _ := fmt.Sscan(string(b), &a, &z); n == 2 && a > 0 && z >= a {
			ephLo, ephHi = a, z
		}
	}
	const floor = 10000 // stay clear of well-known and registered service ports in common use
	if ephLo-floor >= 2000 {
		return floor, ephLo
	}
	if 65535-ephHi >= 2000 {
		return ephHi + 1, 65536
	}
	return floor, 65536
}
