package sessions

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/device.lua
	deviceLua string
	//go:embed lua/propose.lua
	proposeLua string
	//go:embed lua/end.lua
	endLua string
	//go:embed lua/publish.lua
	publishLua string
	//go:embed lua/message_due.lua
	messageDueLua string
	//go:embed lua/register.lua
	registerLua string
	//go:embed lua/remove.lua
	removeLua string
)

var (
	proposeScript    = script(proposeLua)
	endScript        = script(endLua)
	publishScript    = script(publishLua)
	messageDueScript = script(messageDueLua)
	registerScript   = script(registerLua)
	removeScript     = script(removeLua)
	allScripts       = []*redis.Script{proposeScript, endScript, publishScript, messageDueScript, registerScript, removeScript}
)

// script is a Lua script behind the status names (status.go) and the
// device helpers of lua/device.lua.
func script(body string) *redis.Script { return redis.NewScript(luaPrelude() + deviceLua + body) }

// Store is the Redis layer: one method per atomic step, no policy. The
// Service on top of it decides what the steps mean for pushes.
type Store struct {
	rdb   redis.UniversalClient
	keys  keys
	batch *proposeBatcher
	cache *deviceCache // what Redis last said of each account's devices, for the fail-open path
}

// NewStore returns a Store that keeps its keys under prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, keys: keys{prefix: prefix}, batch: newProposeBatcher(rdb, 64), cache: newDeviceCache(100_000, 24*time.Hour)}
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("sessions: redis ping: %w", err)
	}
	return nil
}

// LoadScripts loads the Lua scripts into every Redis node, so the hot path can
// use EVALSHA inside pipelines. Scripts missing later (a Redis restart) are
// reloaded on demand.
func (s *Store) LoadScripts(ctx context.Context) error {
	load := func(ctx context.Context, c *redis.Client) error {
		for _, sc := range allScripts {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachShard(ctx, load)
	case *redis.Client:
		err = load(ctx, c)
	default:
		for _, sc := range allScripts {
			if err = sc.Load(ctx, s.rdb).Err(); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("sessions: load scripts: %w", err)
	}
	return nil
}

// run runs a script by hash and falls back to sending its source when Redis
// lost it (redis.Script.Run does exactly that).
func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) ([]any, error) {
	res, err := sc.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, err
	}
	return res, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// str reads element i of a script reply as a string ("" when absent).
func str(res []any, i int) string {
	if i >= len(res) {
		return ""
	}
	switch v := res[i].(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

func num(res []any, i int) int64 {
	if i >= len(res) {
		return 0
	}
	switch v := res[i].(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
