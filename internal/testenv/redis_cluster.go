package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// clusterTimeout bounds the waits for a cluster or sentinel setup to
// settle: start, failover, a node's return.
const clusterTimeout = 30 * time.Second

// settle polls check until it returns nil; after timeout it returns check's
// last error, which says what was still missing.
func settle(timeout time.Duration, check func() error) error {
	var last error
	err := poll(timeout, func() (bool, error) {
		last = check()
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("after %v: %w", timeout, last)
	}
	return nil
}

// ClusterOptions shape a Redis Cluster started by StartRedisCluster.
type ClusterOptions struct {
	// Masters is the number of masters, each serving an equal share of the
	// slots; 3 when zero. Failover after Kill needs a majority of masters
	// alive, so at least 3.
	Masters int
	// ReplicasPerMaster is the number of replicas of each master; a failover
	// needs at least 1.
	ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout: how long a master may be
	// unreachable before its replica replaces it; 1.5s when zero. Much
	// shorter and a busy machine fails over masters that are merely slow.
	NodeTimeout time.Duration
	// AppendOnly gives every node an append-only file (see RedisOptions).
	AppendOnly bool
	// Config holds more redis-server options for every node.
	Config map[string]string
}

func (o ClusterOptions) withDefaults() (ClusterOptions, error) {
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = 1500 * time.Millisecond
	}
	if o.Masters < 1 || o.Masters > clusterSlots || o.ReplicasPerMaster < 0 || o.NodeTimeout < time.Millisecond {
		return o, fmt.Errorf("cluster options %+v out of range", o)
	}
	return o, nil
}

// RedisCluster is a Redis Cluster of redis-servers on loopback ports.
type RedisCluster struct {
	// Nodes are the servers, in the roles they had at start: the masters
	// first, then the replicas of the first master, of the second...
	// Failovers change roles; ask Masters, MasterForKey or ReplicasOf.
	Nodes []*ClusterNode

	opts ClusterOptions
}

// ClusterNode is one server of a RedisCluster. Its Redis methods pause,
// kill and restart it; a restarted node rejoins with its nodes.conf.
type ClusterNode struct {
	*Redis
	// ID is the node's cluster ID.
	ID string
	// BusAddr is host:port of its cluster bus.
	BusAddr string
}

// StartRedisCluster starts a Redis Cluster of opts.Masters masters with
// opts.ReplicasPerMaster replicas each, assigns the slots, and waits until
// every node reports cluster_state:ok and agrees on who serves which slot.
// Its processes are stopped at t's cleanup. The test is skipped if
// redis-server is not installed (see EnvRequireServers).
func StartRedisCluster(t testing.TB, opts ClusterOptions) *RedisCluster {
	t.Helper()
	bin := RequireBinary(t, "redis-server")
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c := &RedisCluster{opts: opts}
	n := opts.Masters * (1 + opts.ReplicasPerMaster)
	for i := range n {
		c.Nodes = append(c.Nodes, c.startNode(t, bin, i))
	}
	if err := c.create(); err != nil {
		t.Fatalf("testenv: create redis cluster: %v", err)
	}
	c.WaitHealthy(t)
	return c
}

// startNode starts the node numbered i, empty and outside any cluster.
func (c *RedisCluster) startNode(t testing.TB, bin string, i int) *ClusterNode {
	t.Helper()
	name := fmt.Sprintf("redis-node-%d", i)
	r := newRedis(t, name, bin, t.TempDir(), RedisOptions{AppendOnly: c.opts.AppendOnly, Config: c.opts.Config})
	base := append(r.args,
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(c.opts.NodeTimeout.Milliseconds(), 10),
		// A replica may always replace its master, however long their link
		// was down: tests fail over on purpose.
		"--cluster-replica-validity-factor", "0",
		// Replicas stay with the master they were given.
		"--cluster-allow-replica-migration", "no",
		// Replicas sync at once rather than after the default 5s.
		"--repl-diskless-sync-delay", "0",
	)
	node := &ClusterNode{Redis: r}
	startOnFreePorts(t, name, []string{loopback, loopback}, func(ports []int) error {
		// A failed attempt may have written nodes.conf with its ports.
		_ = os.Remove(filepath.Join(r.Dir, "nodes.conf"))
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		node.BusAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		r.args = append(slices.Clip(base), "--cluster-port", strconv.Itoa(ports[1]))
		return r.start()
	})
	return node
}

// create joins the fresh nodes into a cluster by hand, which is faster than
// redis-cli --cluster create (it waits in steps of a second): distinct
// config epochs, slots to the masters, MEET, then replicas.
func (c *RedisCluster) create() error {
	for i, n := range c.Nodes {
		id, err := redisString(n.Addr, "CLUSTER", "MYID")
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		n.ID = id
		// Distinct epochs spare the cluster resolving a collision.
		if err := redisOK(n.Addr, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
	}
	m := c.opts.Masters
	for i, n := range c.Nodes[:m] {
		lo, hi := i*clusterSlots/m, (i+1)*clusterSlots/m-1
		if err := redisOK(n.Addr, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
	}
	seed := c.Nodes[0]
	for _, n := range c.Nodes[1:] {
		host, port, _ := net.SplitHostPort(n.Addr)
		_, bus, _ := net.SplitHostPort(n.BusAddr)
		if err := redisOK(seed.Addr, "CLUSTER", "MEET", host, port, bus); err != nil {
			return fmt.Errorf("%s: MEET %s: %w", seed.Addr, n.Addr, err)
		}
	}
	// A replica can only follow a master it knows.
	if err := settle(clusterTimeout, c.allKnown); err != nil {
		return fmt.Errorf("nodes did not meet %w", err)
	}
	for i, n := range c.Nodes[m:] {
		master := c.Nodes[i/c.opts.ReplicasPerMaster]
		if err := redisOK(n.Addr, "CLUSTER", "REPLICATE", master.ID); err != nil {
			return fmt.Errorf("%s: REPLICATE %s: %w", n.Addr, master.Addr, err)
		}
	}
	return nil
}

// allKnown reports whether every node knows every other by its ID.
func (c *RedisCluster) allKnown() error {
	for _, n := range c.Nodes {
		views, err := clusterNodes(n.Addr)
		if err != nil {
			return err
		}
		for _, o := range c.Nodes {
			v, ok := views[o.ID]
			if !ok || v.has("handshake") || v.has("noaddr") {
				return fmt.Errorf("%s does not know %s yet", n.Addr, o.Addr)
			}
		}
	}
	return nil
}

// Addrs returns the address of every node: seeds for a cluster client.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Node returns the node at addr, or nil.
func (c *RedisCluster) Node(addr string) *ClusterNode {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

func (c *RedisCluster) byID(id string) *ClusterNode {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// WaitHealthy waits until the cluster is whole and settled: every node that
// runs and is not paused reports cluster_state:ok with all slots served, all
// of them report the same roles and slots, every slot is served by a node
// that is up, and every replica that is up has its replication link up.
// Nodes that are down or paused are left out, so it also waits for the
// cluster to recover from losing one.
func (c *RedisCluster) WaitHealthy(t testing.TB) {
	t.Helper()
	if err := settle(clusterTimeout, c.healthy); err != nil {
		t.Fatalf("testenv: redis cluster not healthy %v", err)
	}
}

func (c *RedisCluster) healthy() error {
	var agreed string
	var agreedBy *ClusterNode
	for _, n := range c.Nodes {
		if !n.up() {
			continue
		}
		s, err := redisString(n.Addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		info := infoFields(s)
		for k, want := range map[string]string{
			"cluster_state":          "ok",
			"cluster_slots_assigned": strconv.Itoa(clusterSlots),
			"cluster_slots_ok":       strconv.Itoa(clusterSlots),
			"cluster_known_nodes":    strconv.Itoa(len(c.Nodes)),
		} {
			if info[k] != want {
				return fmt.Errorf("%s: %s:%s, want %s", n.Addr, k, info[k], want)
			}
		}
		views, err := clusterNodes(n.Addr)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		for _, v := range views {
			o := c.byID(v.id)
			switch {
			case o == nil || v.has("handshake") || v.has("noaddr"):
				return fmt.Errorf("%s sees an unknown node %s %s", n.Addr, v.id, v.addr)
			case o.up() && (v.has("fail") || v.has("fail?")):
				return fmt.Errorf("%s flags %s %s", n.Addr, o.Addr, strings.Join(v.flags, ","))
			case len(v.slots) > 0 && !o.up():
				return fmt.Errorf("%s sees slots %s served by %s, which is down", n.Addr, v.slots, o.Addr)
			}
		}
		if me := views[n.ID]; me.has("slave") {
			s, err := redisString(n.Addr, "INFO", "replication")
			if err != nil {
				return fmt.Errorf("%s: %w", n.Addr, err)
			}
			if st := infoFields(s)["master_link_status"]; st != "up" {
				return fmt.Errorf("%s: master_link_status:%s", n.Addr, st)
			}
		}
		if sum := viewSummary(views); agreedBy == nil {
			agreed, agreedBy = sum, n
		} else if sum != agreed {
			return fmt.Errorf("%s and %s disagree:\n%s\n%s", agreedBy.Addr, n.Addr, agreed, sum)
		}
	}
	if agreedBy == nil {
		return errors.New("no node is up")
	}
	return nil
}

// view returns the cluster as a node that is up sees it.
func (c *RedisCluster) view(t testing.TB) map[string]nodeView {
	t.Helper()
	var last error
	for _, n := range c.Nodes {
		if !n.up() {
			continue
		}
		views, err := clusterNodes(n.Addr)
		if err == nil {
			return views
		}
		last = err
	}
	t.Fatalf("testenv: no redis cluster node answers CLUSTER NODES (%v)", last)
	return nil
}

// Masters returns the nodes that serve slots now.
func (c *RedisCluster) Masters(t testing.TB) []*ClusterNode {
	t.Helper()
	views := c.view(t)
	var ms []*ClusterNode
	for _, n := range c.Nodes {
		if v, ok := views[n.ID]; ok && v.has("master") && len(v.slots) > 0 {
			ms = append(ms, n)
		}
	}
	return ms
}

// ReplicasOf returns the nodes that replicate master now, up or not.
func (c *RedisCluster) ReplicasOf(t testing.TB, master *ClusterNode) []*ClusterNode {
	t.Helper()
	views := c.view(t)
	var rs []*ClusterNode
	for _, n := range c.Nodes {
		if v, ok := views[n.ID]; ok && v.has("slave") && v.master == master.ID {
			rs = append(rs, n)
		}
	}
	return rs
}

// MasterForSlot returns the node that serves slot now.
func (c *RedisCluster) MasterForSlot(t testing.TB, slot int) *ClusterNode {
	t.Helper()
	for _, v := range c.view(t) {
		if v.has("master") && v.serves(slot) {
			if n := c.byID(v.id); n != nil {
				return n
			}
		}
	}
	t.Fatalf("testenv: no redis cluster node serves slot %d", slot)
	return nil
}

// Slot returns the hash slot of key, as the cluster computes it.
func (c *RedisCluster) Slot(t testing.TB, key string) int {
	t.Helper()
	for _, n := range c.Nodes {
		if !n.up() {
			continue
		}
		if reply, err := redisCall(n.Addr, "CLUSTER", "KEYSLOT", key); err == nil {
			if slot, ok := reply.(int64); ok {
				return int(slot)
			}
		}
	}
	t.Fatalf("testenv: no redis cluster node answers CLUSTER KEYSLOT")
	return 0
}

// MasterForKey returns the node that serves key now.
func (c *RedisCluster) MasterForKey(t testing.TB, key string) *ClusterNode {
	t.Helper()
	return c.MasterForSlot(t, c.Slot(t, key))
}

// Failover promotes a replica of master with CLUSTER FAILOVER, the
// coordinated failover in which no acknowledged write is lost, and waits
// until master has become its replica and the cluster is healthy. It
// returns the new master. master must be up: for one that is down or
// paused, the cluster fails over by itself (wait with WaitHealthy).
func (c *RedisCluster) Failover(t testing.TB, master *ClusterNode) *ClusterNode {
	t.Helper()
	replica := c.upReplica(t, master)
	var sent time.Time
	var last error
	err := poll(clusterTimeout, func() (bool, error) {
		// The failover aborts if the two cannot agree within 5s
		// (CLUSTER_MF_TIMEOUT); ask again.
		if time.Since(sent) > 6*time.Second {
			if err := redisOK(replica.Addr, "CLUSTER", "FAILOVER"); err != nil {
				return false, fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica.Addr, err)
			}
			sent = time.Now()
		}
		last = c.replaced(master, replica)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("testenv: redis cluster failover of %s to %s: %v (%v)", master.Addr, replica.Addr, err, last)
	}
	c.WaitHealthy(t)
	return replica
}

// FailoverByKill kills master with SIGKILL and waits until one of its
// replicas has taken over its slots and the cluster is healthy again; it
// returns the new master. Writes the replica had not received are lost, as
// in a crash. master stays down: Restart brings it back as a replica.
func (c *RedisCluster) FailoverByKill(t testing.TB, master *ClusterNode) *ClusterNode {
	t.Helper()
	c.upReplica(t, master)
	replicas := c.ReplicasOf(t, master)
	master.Kill()
	var promoted *ClusterNode
	Eventually(t, clusterTimeout, func() bool {
		for _, r := range replicas {
			if r.up() && c.replaced(master, r) == nil {
				promoted = r
				return true
			}
		}
		return false
	}, "a replica of %s to take over its slots", master.Addr)
	c.WaitHealthy(t)
	return promoted
}

// upReplica returns a replica of master that is up, or fails the test.
func (c *RedisCluster) upReplica(t testing.TB, master *ClusterNode) *ClusterNode {
	t.Helper()
	for _, r := range c.ReplicasOf(t, master) {
		if r.up() {
			return r
		}
	}
	t.Fatalf("testenv: %s has no replica that is up to fail over to", master.Addr)
	return nil
}

// replaced reports whether replica serves slots as a master, in its own
// view and, if old is up, in old's view, where old follows it.
func (c *RedisCluster) replaced(old, replica *ClusterNode) error {
	views, err := clusterNodes(replica.Addr)
	if err != nil {
		return err
	}
	if v := views[replica.ID]; !v.has("master") || len(v.slots) == 0 {
		return fmt.Errorf("%s is still %s", replica.Addr, strings.Join(v.flags, ","))
	}
	if !old.up() {
		return nil
	}
	views, err = clusterNodes(old.Addr)
	if err != nil {
		return err
	}
	if v := views[old.ID]; !v.has("slave") || v.master != replica.ID {
		return fmt.Errorf("%s does not follow %s yet", old.Addr, replica.Addr)
	}
	return nil
}

// nodeView is one line of CLUSTER NODES: a node as another sees it.
type nodeView struct {
	id     string
	addr   string   // host:port of clients
	flags  []string // myself, master, slave, fail?, fail, handshake...
	master string   // ID of its master, or "-"
	slots  []string // served slots and ranges: "0-5460", "7000"
}

func (v nodeView) has(flag string) bool { return slices.Contains(v.flags, flag) }

func (v nodeView) serves(slot int) bool {
	for _, s := range v.slots {
		lo, hi, isRange := strings.Cut(s, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 == nil && err2 == nil && a <= slot && slot <= b {
			return true
		}
	}
	return false
}

// clusterNodes asks addr for CLUSTER NODES and returns the lines by node
// ID.
func clusterNodes(addr string) (map[string]nodeView, error) {
	s, err := redisString(addr, "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	views := make(map[string]nodeView)
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES line %q", line)
		}
		v := nodeView{id: f[0], flags: strings.Split(f[2], ","), master: f[3]}
		v.addr, _, _ = strings.Cut(f[1], "@")
		for _, s := range f[8:] {
			// "[slot->-id]" marks a slot in migration, not served.
			if !strings.HasPrefix(s, "[") {
				v.slots = append(v.slots, s)
			}
		}
		views[v.id] = v
	}
	return views, nil
}

// viewSummary is what nodes must agree on: each node's role, master and
// slots.
func viewSummary(views map[string]nodeView) string {
	var lines []string
	for id, v := range views {
		role := "master"
		if v.has("slave") {
			role = "replica of " + v.master
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s", id, v.addr, role, strings.Join(v.slots, " ")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
