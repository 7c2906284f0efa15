package sessions

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Durability reads how Redis keeps jinglepush's data and returns a warning
// for each risk, naming the risk and the fix (docs/redis.md): an eviction
// policy that can drop registrations, or no persistence at all, which
// loses every registration on a restart. On a cluster every master is
// read. A Redis that refuses CONFIG (managed services rename it) is read
// through INFO alone.
func (s *Store) Durability(ctx context.Context) ([]string, error) {
	var (
		mu       sync.Mutex // a cluster's masters are read side by side
		warnings []string
	)
	check := func(ctx context.Context, c *redis.Client) error {
		w, err := durability(ctx, c)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, msg := range w {
			warnings = append(warnings, c.Options().Addr+": "+msg)
		}
		return nil
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, check)
	case *redis.Client:
		err = check(ctx, c)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: redis durability: %w", err)
	}
	slices.Sort(warnings)
	return warnings, nil
}

func durability(ctx context.Context, c *redis.Client) ([]string, error) {
	mem, err := infoFields(ctx, c, "memory")
	if err != nil {
		return nil, err
	}
	pers, err := infoFields(ctx, c, "persistence")
	if err != nil {
		return nil, err
	}
	var out []string
	if policy := mem["maxmemory_policy"]; policy != "" && policy != "noeviction" {
		out = append(out, fmt.Sprintf("maxmemory-policy is %s: when Redis reaches maxmemory it evicts keys, registrations among them, and those phones stop ringing until their apps register again; set maxmemory-policy noeviction", policy))
	}
	aof := pers["aof_enabled"] == "1"
	save := ""
	if v, err := c.ConfigGet(ctx, "save").Result(); err == nil {
		save = strings.TrimSpace(v["save"])
	} else if pers["rdb_last_save_time"] != "" && pers["rdb_changes_since_last_save"] != "" {
		save = "unknown" // CONFIG refused: assume snapshots may run
	}
	switch {
	case !aof && save == "":
		out = append(out, "Redis keeps nothing on disk (appendonly no, no save points): a restart loses every registration until the apps register again; set appendonly yes and appendfsync everysec")
	case !aof:
		out = append(out, "Redis only takes snapshots (appendonly no): a crash loses the registrations and calls since the last one; set appendonly yes and appendfsync everysec")
	}
	return out, nil
}

// infoFields reads one INFO section as name → value.
func infoFields(ctx context.Context, c *redis.Client, section string) (map[string]string, error) {
	text, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string)
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}
