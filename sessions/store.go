package sessions

import (
	"context"
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/prelude.lua
	preludeLua string
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
	//go:embed lua/wake.lua
	wakeLua string
	//go:embed lua/settle.lua
	settleLua string
	//go:embed lua/claim.lua
	claimLua string
	//go:embed lua/budget.lua
	budgetLua string
	//go:embed lua/refuse.lua
	refuseLua string
	//go:embed lua/sweep.lua
	sweepLua string
	//go:embed lua/tokens.lua
	tokensLua string
	//go:embed lua/ringing.lua
	ringingLua string
)

var (
	proposeScript    = script(proposeLua)
	endScript        = script(endLua)
	publishScript    = script(publishLua)
	messageDueScript = script(messageDueLua)
	registerScript   = script(registerLua)
	removeScript     = script(removeLua)
	wakeScript       = script(wakeLua)
	settleScript     = script(settleLua)
	claimScript      = script(claimLua)
	budgetScript     = script(budgetLua)
	refuseScript     = script(refuseLua)
	sweepScript      = script(sweepLua)
	tokensScript     = script(tokensLua)
	ringingScript    = script(ringingLua)
	allScripts       = []*redis.Script{proposeScript, endScript, publishScript, messageDueScript, registerScript,
		removeScript, wakeScript, settleScript, claimScript, budgetScript, refuseScript, sweepScript, tokensScript, ringingScript}
)

// script is a Lua script behind the shared helpers of lua/prelude.lua it
// uses, with the status names (status.go) written in.
func script(body string) *redis.Script {
	return redis.NewScript(withStatuses(withPrelude(preludeLua, body)))
}

// preludeName is what a part of the prelude defines.
var preludeName = regexp.MustCompile(`(?m)^local (?:function )?([A-Za-z_][A-Za-z0-9_]*)\b`)

// withPrelude puts in front of body the parts of prelude (blocks between
// blank lines) that it needs: those that define nothing named (the
// arguments every script reads) and those defining a helper body or
// another needed part uses. Lua builds every local function of a script
// each time the script runs, so a script pays for no helper it does not
// call.
func withPrelude(prelude, body string) string {
	type part struct {
		text string
		name string // the helper it defines, "" for the common part
	}
	var parts []part
	for _, text := range strings.Split(prelude, "\n\n") {
		p := part{text: text}
		if m := preludeName.FindStringSubmatch(text); m != nil && !strings.Contains(text, "local BASE") {
			p.name = m[1]
		}
		parts = append(parts, p)
	}
	need := map[string]bool{}
	uses := func(text, name string) bool {
		return regexp.MustCompile(`\b` + name + `\b`).MatchString(text)
	}
	var mark func(text string)
	mark = func(text string) {
		for _, p := range parts {
			if p.name != "" && !need[p.name] && uses(text, p.name) {
				need[p.name] = true
				mark(strings.Replace(p.text, "local function "+p.name, "", 1))
			}
		}
	}
	for _, p := range parts {
		if p.name == "" {
			mark(p.text)
		}
	}
	mark(body)
	var b strings.Builder
	for _, p := range parts {
		if p.name == "" || need[p.name] {
			b.WriteString(p.text)
			b.WriteString("\n\n")
		}
	}
	return b.String() + body
}

// Store is the Redis layer: one method per atomic step, no policy. The
// Service on top of it decides what the steps mean for pushes.
type Store struct {
	rdb   redis.UniversalClient
	keys  keys
	batch *batcher
	cache *deviceCache // what Redis last said of each account's devices, for the fail-open path
	// now is the clock the scripts use; nil: Redis's own (TIME), so that
	// every process agrees on every deadline. Tests set their own.
	now      func() time.Time
	traceTTL time.Duration
	// pol is what the scripts need of the configuration of the Service
	// that uses the Store (NewService sets it), and settled counts the
	// wakes whose end Pushed recorded.
	pol     policy
	settled func(op string, err error)
}

// StoreOptions tune a Store.
type StoreOptions struct {
	// TraceTTL is how long a call's trace is kept (0: no traces).
	TraceTTL time.Duration
}

// NewStore returns a Store that keeps its keys under prefix.
func NewStore(rdb redis.UniversalClient, prefix string, opts StoreOptions) *Store {
	return &Store{
		rdb: rdb, keys: keys{prefix: prefix}, batch: newBatcher(rdb, 64),
		cache: newDeviceCache(100_000, 24*time.Hour), traceTTL: opts.TraceTTL,
	}
}

// useClock makes the scripts take their time from now instead of Redis.
func (s *Store) useClock(now func() time.Time) { s.now = now }

// setPolicy gives the Store the Service's settings.
func (s *Store) setPolicy(p policy) { s.pol = p }

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

// args are a script's arguments: the prelude's four (lua/prelude.lua),
// then extra.
func (s *Store) args(base, account string, extra ...any) []any {
	now := ""
	if s.now != nil {
		now = strconv.FormatInt(ms(s.now()), 10)
	}
	return append([]any{base, account, now, s.traceTTL.Milliseconds()}, extra...)
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

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}
