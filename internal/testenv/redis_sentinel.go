package testenv

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SentinelOptions shape the servers StartRedisSentinel starts.
type SentinelOptions struct {
	// Sentinels is the number of redis-sentinel processes; 1 when zero.
	// Their quorum is a majority of them.
	Sentinels int
	// Replicas is the number of replicas of the master; 1 when zero.
	Replicas int
	// MasterName is the name the sentinels know the master by; "mymaster"
	// when empty.
	MasterName string
	// DownAfter is down-after-milliseconds: how long the master may be
	// unreachable before the sentinels replace it; 1s when zero.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout; 5s when zero. A failover that
	// stalls is retried after twice that.
	FailoverTimeout time.Duration
	// AppendOnly and Config apply to the master and the replicas, as in
	// RedisOptions.
	AppendOnly bool
	Config     map[string]string
}

func (o SentinelOptions) withDefaults() (SentinelOptions, error) {
	if o.Sentinels == 0 {
		o.Sentinels = 1
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MasterName == "" {
		o.MasterName = "mymaster"
	}
	if o.DownAfter == 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 5 * time.Second
	}
	if o.Sentinels < 1 || o.Replicas < 1 || o.DownAfter < time.Millisecond || o.FailoverTimeout < time.Millisecond ||
		strings.ContainsAny(o.MasterName, " \t\r\n\"'\\") {
		return o, fmt.Errorf("sentinel options %+v out of range", o)
	}
	return o, nil
}

// sentinelDebug returns the sentinels' internal periods (SENTINEL DEBUG,
// in ms), shortened so that a failover ends in seconds:
//   - PING more often than down-after: at the default of 1s (a period of
//     min(1s, down-after)), the link a sentinel opens to a new master sends
//     its first PING only when down-after has passed, and the new master is
//     briefly judged down;
//   - INFO every 500ms instead of 10s and hellos every 250ms instead of 2s,
//     so that an old master that is back is made a replica within about a
//     second (Sentinel waits four hello periods, then acts on an INFO);
//   - a TILT, which follows a timer delay of 2s (a paused sentinel, a busy
//     machine), lasts 2s instead of 30s.
func sentinelDebug(downAfter time.Duration) []string {
	ping := max(min(250*time.Millisecond, downAfter/4), time.Millisecond)
	return []string{
		"PING-PERIOD", strconv.FormatInt(ping.Milliseconds(), 10),
		"INFO-PERIOD", "500",
		"PUBLISH-PERIOD", "250",
		"ASK-PERIOD", "500",
		"TILT-PERIOD", "2000",
	}
}

// RedisSentinel is a master, its replicas and the Redis Sentinels that
// watch them, on loopback ports.
type RedisSentinel struct {
	// MasterName is the name the sentinels know the master by.
	MasterName string
	// Servers are the master and its replicas, Servers[0] the master at
	// start; failovers change that, ask Master.
	Servers []*Redis
	// Sentinels are the redis-sentinel processes.
	Sentinels []*Redis

	opts SentinelOptions
}

// StartRedisSentinel starts a master, opts.Replicas replicas of it and
// opts.Sentinels sentinels, and waits until the sentinels know all of them
// and each other. Everything is stopped at t's cleanup. The test is skipped
// if redis-server or redis-sentinel is not installed (see
// EnvRequireServers).
//
// The master and replicas have a redis.conf, so that the CONFIG REWRITE
// with which sentinels record a change makes it survive a restart, as it
// does for an installed server.
func StartRedisSentinel(t testing.TB, opts SentinelOptions) *RedisSentinel {
	t.Helper()
	serverBin := RequireBinary(t, "redis-server")
	sentinelBin := RequireBinary(t, "redis-sentinel")
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s := &RedisSentinel{MasterName: opts.MasterName, opts: opts}
	for i := range 1 + opts.Replicas {
		r := newRedis(t, fmt.Sprintf("redis-%d", i), serverBin, t.TempDir(), RedisOptions{AppendOnly: opts.AppendOnly, Config: opts.Config})
		// Replicas sync at once rather than after the default 5s.
		r.args = append(r.args, "--repl-diskless-sync-delay", "0")
		r.conf = filepath.Join(r.Dir, "redis.conf")
		writeFile(t, r.conf, "")
		r.startOnFreePort(t)
		s.Servers = append(s.Servers, r)
	}
	master := s.Servers[0]
	host, port, _ := net.SplitHostPort(master.Addr)
	for _, r := range s.Servers[1:] {
		if err := redisOK(r.Addr, "REPLICAOF", host, port); err != nil {
			t.Fatalf("testenv: %s: REPLICAOF %s: %v", r.Addr, master.Addr, err)
		}
	}
	// Sentinels learn the replicas from the master's INFO: let it have them.
	if err := settle(startTimeout, func() error { return s.replicating(master) }); err != nil {
		t.Fatalf("testenv: replicas of %s not in sync %v", master.Addr, err)
	}

	conf := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s %[4]d\n"+
		"sentinel down-after-milliseconds %[1]s %[5]d\n"+
		"sentinel failover-timeout %[1]s %[6]d\n"+
		"sentinel parallel-syncs %[1]s 1\n",
		opts.MasterName, host, port, opts.Sentinels/2+1, opts.DownAfter.Milliseconds(), opts.FailoverTimeout.Milliseconds())
	for i := range opts.Sentinels {
		r := &Redis{t: t, name: fmt.Sprintf("sentinel-%d", i), bin: sentinelBin, Dir: t.TempDir(), config: make(map[string]string)}
		// Sentinels rewrite their file with what they learn; a restart
		// reads it back.
		r.conf = filepath.Join(r.Dir, "sentinel.conf")
		writeFile(t, r.conf, conf)
		r.ready = func() error {
			return redisOK(r.Addr, append([]string{"SENTINEL", "DEBUG"}, sentinelDebug(opts.DownAfter)...)...)
		}
		r.startOnFreePort(t)
		s.Sentinels = append(s.Sentinels, r)
	}
	s.WaitHealthy(t)
	return s
}

// SentinelAddrs returns the sentinels' addresses, for a client such as
// go-redis's FailoverClient.
func (s *RedisSentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, r := range s.Sentinels {
		addrs[i] = r.Addr
	}
	return addrs
}

// Server returns the master or replica at addr, or nil.
func (s *RedisSentinel) Server(addr string) *Redis {
	for _, r := range s.Servers {
		if r.Addr == addr {
			return r
		}
	}
	return nil
}

// Master returns the server that every sentinel that is up names as the
// master, waiting for them to agree.
func (s *RedisSentinel) Master(t testing.TB) *Redis {
	t.Helper()
	var m *Redis
	err := settle(clusterTimeout, func() (err error) {
		m, err = s.agreedMaster()
		return err
	})
	if err != nil {
		t.Fatalf("testenv: sentinels do not agree on a master %v", err)
	}
	return m
}

// Replicas returns the servers that are not the master.
func (s *RedisSentinel) Replicas(t testing.TB) []*Redis {
	t.Helper()
	m := s.Master(t)
	var rs []*Redis
	for _, r := range s.Servers {
		if r != m {
			rs = append(rs, r)
		}
	}
	return rs
}

// agreedMaster returns the server all sentinels that are up name.
func (s *RedisSentinel) agreedMaster() (*Redis, error) {
	var addr string
	for _, sen := range s.Sentinels {
		if !sen.up() {
			continue
		}
		a, err := s.masterAddr(sen)
		if err != nil {
			return nil, err
		}
		if addr != "" && a != addr {
			return nil, fmt.Errorf("sentinels name %s and %s", addr, a)
		}
		addr = a
	}
	if addr == "" {
		return nil, errors.New("no sentinel is up")
	}
	m := s.Server(addr)
	if m == nil {
		return nil, fmt.Errorf("sentinels name %s, not one of the servers", addr)
	}
	return m, nil
}

// masterAddr asks sen for the master's address.
func (s *RedisSentinel) masterAddr(sen *Redis) (string, error) {
	reply, err := redisCall(sen.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
	if err != nil {
		return "", fmt.Errorf("%s: %w", sen.Addr, err)
	}
	hp, ok := reply.([]any)
	if !ok || len(hp) != 2 {
		return "", fmt.Errorf("%s: GET-MASTER-ADDR-BY-NAME answered %v", sen.Addr, reply)
	}
	return net.JoinHostPort(fmt.Sprint(hp[0]), fmt.Sprint(hp[1])), nil
}

// WaitHealthy waits until the setup is whole and settled: every sentinel
// that is up names the same master, which is up and takes writes, sees no
// failover under way and knows every other sentinel; every server that is up
// besides the master replicates it with its link up, and the sentinels know
// it as such. Servers and sentinels that are down or paused are left out,
// so it also waits for the sentinels to replace a master that is.
func (s *RedisSentinel) WaitHealthy(t testing.TB) {
	t.Helper()
	if err := settle(clusterTimeout, s.healthy); err != nil {
		t.Fatalf("testenv: redis sentinel setup not healthy %v", err)
	}
}

func (s *RedisSentinel) healthy() error {
	m, err := s.agreedMaster()
	if err != nil {
		return err
	}
	if !m.up() {
		return fmt.Errorf("the master %s is down", m.Addr)
	}
	if err := writable(m); err != nil {
		return err
	}
	if err := s.replicating(m); err != nil {
		return err
	}
	for _, sen := range s.Sentinels {
		if !sen.up() {
			continue
		}
		if err := s.sentinelSettled(sen, m); err != nil {
			return fmt.Errorf("%s: %w", sen.Addr, err)
		}
	}
	return nil
}

// writable checks that m takes writes: DEL of a key no test uses is a
// write command that changes nothing.
func writable(m *Redis) error {
	if _, err := redisCall(m.Addr, "DEL", "testenv:write-probe"); err != nil {
		return fmt.Errorf("%s does not take writes: %w", m.Addr, err)
	}
	return nil
}

// replicating checks that every server that is up besides m replicates m
// with its link up, and that m counts them.
func (s *RedisSentinel) replicating(m *Redis) error {
	want := 0
	for _, r := range s.Servers {
		if r == m || !r.up() {
			continue
		}
		want++
		info, err := redisString(r.Addr, "INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: %w", r.Addr, err)
		}
		f := infoFields(info)
		if f["role"] != "slave" || net.JoinHostPort(f["master_host"], f["master_port"]) != m.Addr || f["master_link_status"] != "up" {
			return fmt.Errorf("%s: role:%s of %s:%s, link %s; want a replica of %s", r.Addr, f["role"], f["master_host"], f["master_port"], f["master_link_status"], m.Addr)
		}
	}
	info, err := redisString(m.Addr, "INFO", "replication")
	if err != nil {
		return fmt.Errorf("%s: %w", m.Addr, err)
	}
	if f := infoFields(info); f["role"] != "master" || f["connected_slaves"] != strconv.Itoa(want) {
		return fmt.Errorf("%s: role:%s with %s replicas, want master with %d", m.Addr, f["role"], f["connected_slaves"], want)
	}
	return nil
}

// sentinelSettled checks what sen reports of the master m: no failover or
// down flag, every other sentinel known, and every server that is up
// besides m known as its replica.
func (s *RedisSentinel) sentinelSettled(sen *Redis, m *Redis) error {
	reply, err := redisCall(sen.Addr, "SENTINEL", "MASTER", s.MasterName)
	if err != nil {
		return err
	}
	f := pairs(reply)
	if f["flags"] != "master" {
		return fmt.Errorf("master %s flags %s", m.Addr, f["flags"])
	}
	if want := strconv.Itoa(len(s.Sentinels) - 1); f["num-other-sentinels"] != want {
		return fmt.Errorf("knows %s other sentinels, want %s", f["num-other-sentinels"], want)
	}
	reply, err = redisCall(sen.Addr, "SENTINEL", "REPLICAS", s.MasterName)
	if err != nil {
		return err
	}
	known := make(map[string]map[string]string)
	items, _ := reply.([]any)
	for _, item := range items {
		r := pairs(item)
		known[net.JoinHostPort(r["ip"], r["port"])] = r
	}
	for _, r := range s.Servers {
		if r == m || !r.up() {
			continue
		}
		k, ok := known[r.Addr]
		if !ok {
			return fmt.Errorf("does not know the replica %s", r.Addr)
		}
		if k["flags"] != "slave" || k["master-link-status"] != "ok" || net.JoinHostPort(k["master-host"], k["master-port"]) != m.Addr {
			return fmt.Errorf("sees the replica %s with flags %s, link %s, master %s:%s", r.Addr, k["flags"], k["master-link-status"], k["master-host"], k["master-port"])
		}
	}
	return nil
}

// pairs turns a flat reply of names and values into a map.
func pairs(reply any) map[string]string {
	m := make(map[string]string)
	items, _ := reply.([]any)
	for i := 0; i+1 < len(items); i += 2 {
		m[fmt.Sprint(items[i])] = fmt.Sprint(items[i+1])
	}
	return m
}

// Failover asks a sentinel for a failover (SENTINEL FAILOVER), and waits
// until the sentinels name a new master that takes writes, the old master
// has become its replica and the setup is healthy. It returns the new
// master.
func (s *RedisSentinel) Failover(t testing.TB) *Redis {
	t.Helper()
	s.WaitHealthy(t)
	old := s.Master(t)
	var sen *Redis
	for _, r := range s.Sentinels {
		if r.up() {
			sen = r
			break
		}
	}
	if sen == nil {
		t.Fatal("testenv: no sentinel is up to fail over")
	}
	// NOGOODSLAVE: the sentinel has not judged the replicas yet.
	err := settle(clusterTimeout, func() error { return redisOK(sen.Addr, "SENTINEL", "FAILOVER", s.MasterName) })
	if err != nil {
		t.Fatalf("testenv: %s: SENTINEL FAILOVER %s %v", sen.Addr, s.MasterName, err)
	}
	return s.WaitNewMaster(t, old)
}

// FailoverByKill kills the master with SIGKILL and waits until the
// sentinels have promoted a replica that takes writes. It returns the new
// master. The old one stays down; after Restart the sentinels make it a
// replica (WaitHealthy waits for that).
func (s *RedisSentinel) FailoverByKill(t testing.TB) *Redis {
	t.Helper()
	s.WaitHealthy(t)
	old := s.Master(t)
	old.Kill()
	return s.WaitNewMaster(t, old)
}

// WaitNewMaster waits until the sentinels name a master other than old and
// the setup is healthy: after a failover, or after the master was killed or
// paused for longer than DownAfter. It returns the new master.
func (s *RedisSentinel) WaitNewMaster(t testing.TB, old *Redis) *Redis {
	t.Helper()
	Eventually(t, clusterTimeout, func() bool {
		m, err := s.agreedMaster()
		return err == nil && m != old
	}, "the sentinels to replace the master %s", old.Addr)
	s.WaitHealthy(t)
	m := s.Master(t)
	if m == old {
		t.Fatalf("testenv: the sentinels named %s as the master again", old.Addr)
	}
	return m
}
