package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// child is a process the harness started; it dies with the harness.
type child struct {
	cmd  *exec.Cmd
	name string
}

func startChild(name string, logPath string, args ...string) (*child, error) {
	cmd := exec.Command(args[0], args[1:]...)
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &child{cmd: cmd, name: name}, nil
}

func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis runs a private redis-server without persistence.
func startRedis(dir string, args ...string) (*child, string, error) {
	port := freePort()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := startChild("redis-server", filepath.Join(dir, "redis.log"), append([]string{"redis-server",
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, args...)...)
	if err != nil {
		return nil, "", err
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if rdb.Ping(context.Background()).Err() == nil {
			return c, addr, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, "", fmt.Errorf("redis-server did not answer on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCluster runs a Redis Cluster of n masters without replicas (the
// figures are the cost of spreading the keys, not of replicating them)
// and waits until every node says the cluster is ok.
func startCluster(dir string, n int) ([]*child, []string, error) {
	var procs []*child
	var addrs []string
	for i := range n {
		ndir := filepath.Join(dir, fmt.Sprintf("redis-node-%d", i))
		if err := os.Mkdir(ndir, 0o700); err != nil {
			return procs, nil, err
		}
		c, addr, err := startRedis(ndir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		if err != nil {
			return procs, nil, err
		}
		procs, addrs = append(procs, c), append(addrs, addr)
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		return procs, nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				rdb.Close()
				return procs, nil, fmt.Errorf("redis cluster node %s not ok: %v %s", addr, err, info)
			}
		}
		rdb.Close()
	}
	return procs, addrs, nil
}

// usedMemory sums used_memory (INFO memory) over the servers at addrs.
func usedMemory(addrs []string) (int64, error) {
	var sum int64
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		info, err := rdb.Info(context.Background(), "memory").Result()
		rdb.Close()
		if err != nil {
			return 0, fmt.Errorf("redis %s: %w", addr, err)
		}
		found := false
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("redis %s: used_memory %q", addr, v)
				}
				sum += n
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("redis %s: no used_memory", addr)
		}
	}
	return sum, nil
}

// buildJinglepush builds the component into dir.
func buildJinglepush(dir string) (string, error) {
	bin := filepath.Join(dir, "jinglepush")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/jinglepush").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// writeP8 writes a fresh APNs-style signing key (PKCS #8, P-256).
func writeP8(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// procStats reads a process's memory (kB) and CPU time from /proc.
type procStats struct {
	rssKB, hwmKB int64
	cpu          time.Duration
}

func readProc(pid int) (procStats, error) {
	var s procStats
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			s.rssKB = v
		case "VmHWM:":
			s.hwmKB = v
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field, stime the 15th, in clock ticks (100 per second on Linux).
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f2 := strings.Fields(rest)
	ut, _ := strconv.ParseInt(f2[11], 10, 64)
	st, _ := strconv.ParseInt(f2[12], 10, 64)
	s.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	return s, nil
}

// scrape sums the values of the metric lines whose name (up to '{' or ' ')
// is name.
func scrape(addr, name string) (float64, error) {
	lines, err := metricsText(addr)
	var sum float64
	for _, line := range lines {
		if !strings.HasPrefix(line, name) || len(line) <= len(name) || (line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum, err
}

// metricLines returns the non-zero sample lines of the metrics whose names
// start with one of prefixes.
func metricLines(addr string, prefixes ...string) []string {
	lines, err := metricsText(addr)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, line := range lines {
		if strings.HasSuffix(line, " 0") {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// metricsText returns the sample lines of jinglepush's /metrics (no
// comments).
func metricsText(addr string) ([]string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	return lines, sc.Err()
}

// resetCommandStats zeroes INFO commandstats on the servers at addrs.
func resetCommandStats(addrs []string) error {
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		err := rdb.ConfigResetStat(context.Background()).Err()
		rdb.Close()
		if err != nil {
			return fmt.Errorf("redis %s: %w", addr, err)
		}
	}
	return nil
}

// commandStat is one command's line of INFO commandstats, summed over
// servers.
type commandStat struct {
	name  string
	calls int64
	usec  int64
}

// commandStats reads INFO commandstats of the servers at addrs, the
// costliest command first.
func commandStats(addrs []string) ([]commandStat, error) {
	sum := map[string]*commandStat{}
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		info, err := rdb.Info(context.Background(), "commandstats").Result()
		rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("redis %s: %w", addr, err)
		}
		// cmdstat_evalsha:calls=12,usec=345,usec_per_call=28.75,...
		for line := range strings.SplitSeq(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
			name, isCmd := strings.CutPrefix(name, "cmdstat_")
			if !ok || !isCmd {
				continue
			}
			st := sum[name]
			if st == nil {
				st = &commandStat{name: name}
				sum[name] = st
			}
			for field := range strings.SplitSeq(rest, ",") {
				k, v, _ := strings.Cut(field, "=")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "calls":
					st.calls += n
				case "usec":
					st.usec += n
				}
			}
		}
	}
	out := make([]commandStat, 0, len(sum))
	for _, st := range sum {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b commandStat) int { return cmp.Compare(b.usec, a.usec) })
	return out, nil
}
