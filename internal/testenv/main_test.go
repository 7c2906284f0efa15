package testenv_test

import (
	"os"
	"testing"

	"github.com/jinglepush/jinglepush/internal/testenv"
)

// cluster is shared by the cluster tests, as a test package would share it.
var cluster = &testenv.SharedRedisCluster{Options: testenv.ClusterOptions{Masters: 3, ReplicasPerMaster: 1}}

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Close()
	os.Exit(code)
}
