package testenv

import (
	"testing"
	"time"
)

// TestRedisPausedAtCleanup leaves a server paused: the cleanup resumes it,
// so that it exits on SIGTERM rather than by SIGKILL after the grace period.
func TestRedisPausedAtCleanup(t *testing.T) {
	RequireBinary(t, "redis-server")
	var r *Redis
	t.Run("pause", func(t *testing.T) {
		r = StartRedis(t)
		r.process().grace = time.Minute // a hang would show as a timeout
		r.Pause()
	})
	if r == nil || r.Running() {
		t.Fatal("the server outlived its test")
	}
	if err := r.process().Err(); err != nil {
		t.Errorf("the paused server did not exit cleanly: %v", err)
	}
}

func TestClusterOptionsDefaults(t *testing.T) {
	o, err := ClusterOptions{}.withDefaults()
	if err != nil || o.Masters != 3 || o.ReplicasPerMaster != 0 || o.NodeTimeout != 1500*time.Millisecond {
		t.Errorf("defaults %+v, %v", o, err)
	}
	for _, bad := range []ClusterOptions{{Masters: -1}, {ReplicasPerMaster: -1}, {Masters: 20000}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestNodeViewServes(t *testing.T) {
	v := nodeView{slots: []string{"0-5460", "7000", "[7001->-abc]"}}
	for slot, want := range map[int]bool{0: true, 5460: true, 5461: false, 7000: true, 7001: false, 16383: false} {
		if got := v.serves(slot); got != want {
			t.Errorf("serves(%d) = %v", slot, got)
		}
	}
}

func TestInfoFields(t *testing.T) {
	f := infoFields("# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_link_status:up\r\n")
	if f["role"] != "slave" || f["master_link_status"] != "up" || f["master_host"] != "127.0.0.1" {
		t.Errorf("%v", f)
	}
}
