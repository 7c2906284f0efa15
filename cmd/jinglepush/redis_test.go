package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRedisKinds: the [redis] section picks the client: one address a
// plain client, several a cluster client, master_name Sentinel's failover
// client (a plain client that asks the Sentinels where the master is).
func TestRedisKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		toml string
		kind string
	}{
		{`addrs = ["127.0.0.1:6379"]`, redisSingle},
		{`addrs = ["10.0.0.1:7000", "10.0.0.2:7000"]`, redisCluster},
		{"addrs = [\"10.0.0.1:26379\"]\nmaster_name = \"mymaster\"", redisSentinel},
		{"addrs = [\"10.0.0.1:26379\", \"10.0.0.2:26379\"]\nmaster_name = \"mymaster\"\ndb = 3", redisSentinel},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			c, err := Load(writeConfig(t, t.TempDir(), base+"\n[redis]\n"+tt.toml+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Redis.Kind(); got != tt.kind {
				t.Errorf("kind %s, want %s", got, tt.kind)
			}
			rdb := newRedisClient(c.Redis)
			defer rdb.Close()
			_, cluster := rdb.(*redis.ClusterClient)
			_, plain := rdb.(*redis.Client)
			if cluster != (tt.kind == redisCluster) || plain == cluster {
				t.Errorf("%s: client %T", tt.kind, rdb)
			}
		})
	}
}

// TestSentinelPasswordNeverShown: the Sentinels' password is a secret
// like the others.
func TestSentinelPasswordNeverShown(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/good-full.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"String": c.String(), "%+v": fmt.Sprintf("%+v", c.Redis), "%#v": fmt.Sprintf("%#v", c)} {
		if strings.Contains(out, "file-sentinel-password") {
			t.Errorf("%s shows the sentinel password", name)
		}
	}
	if !strings.Contains(c.String(), "redis.sentinel_password = <secret>\n") {
		t.Errorf("String does not mark the sentinel password:\n%s", c)
	}
}

// TestTopologyError: the cluster client rereads its slots when a node did
// not answer or said the cluster is changing, not for a script's error or
// a missing key.
func TestTopologyError(t *testing.T) {
	t.Parallel()
	reply := func(s string) error { return redisReply(s) }
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{context.Canceled, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{io.EOF, true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("sessions: propose: %w", &net.OpError{Op: "read", Err: errors.New("i/o timeout")}), true},
		{reply("CLUSTERDOWN The cluster is down"), true},
		{reply("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{reply("LOADING Redis is loading the dataset in memory"), true},
		{reply("ERR user_script:12: Script attempted to access a non local key"), false},
		{reply("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
	} {
		if got := topologyError(tt.err); got != tt.want {
			t.Errorf("topologyError(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// redisReply is an error reply as go-redis returns one.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}
