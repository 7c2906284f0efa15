package testenv_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// redisDo sends one inline command and returns the first reply line.
func redisDo(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" { // bulk string: the value follows
		line, err = r.ReadString('\n')
	}
	return strings.TrimSpace(line), err
}

func TestRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") {
		t.Errorf("Addr %s", r.Addr)
	}
	if got, err := redisDo(r.Addr, "SET k v"); err != nil || got != "+OK" {
		t.Fatalf("SET: %q, %v", got, err)
	}
	if got, err := redisDo(r.Addr, "GET k"); err != nil || got != "v" {
		t.Fatalf("GET: %q, %v", got, err)
	}

	r.Stop()
	if _, err := redisDo(r.Addr, "PING"); err == nil {
		t.Error("PING answered after Stop")
	}
	r.Restart(t)
	if got, err := redisDo(r.Addr, "GET k"); err != nil || got != "$-1" {
		t.Errorf("GET after restart: %q, %v (want no value)", got, err)
	}
}

// TestTwoRedis checks that two servers in one test get separate ports.
func TestTwoRedis(t *testing.T) {
	a, b := testenv.StartRedis(t), testenv.StartRedis(t)
	if a.Addr == b.Addr {
		t.Fatalf("both on %s", a.Addr)
	}
	for _, r := range []*testenv.Redis{a, b} {
		if got, err := redisDo(r.Addr, "PING"); err != nil || got != "+PONG" {
			t.Errorf("%s: %q, %v", r.Addr, got, err)
		}
	}
}
