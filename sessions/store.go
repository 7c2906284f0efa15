package sessions

import (
	"context"
	_ "embed"
	"errors"
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

// script is a Lua script behind the device helpers of lua/device.lua.
func script(body string) *redis.Script { return redis.NewScript(deviceLua + body) }

// Store is the Redis layer: one method per atomic step, no policy. The
// Service on top of it decides what the steps mean for pushes.
type Store struct {
	rdb   redis.UniversalClient
	keys  keys
	batch *proposeBatcher
}

// NewStore returns a Store that keeps its keys under prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, keys: keys{prefix: prefix}, batch: newProposeBatcher(rdb, 64)}
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

// ---- devices ----------------------------------------------------------------

// errFull is register.lua's answer for an account at its device limit.
var errFull = errors.New("sessions: device limit reached")

// putDevice stores d (see register.lua) and returns the device as stored:
// an existing device keeps its node and secret.
func (s *Store) putDevice(ctx context.Context, account string, d Device, max int, ttl time.Duration) (Device, error) {
	raw, err := d.marshal()
	if err != nil {
		return Device{}, err
	}
	res, err := s.run(ctx, registerScript, []string{s.keys.devices(account)}, d.ID, raw, max, ttl.Milliseconds())
	if err != nil {
		return Device{}, fmt.Errorf("sessions: register: %w", err)
	}
	if str(res, 0) == "full" {
		return Device{}, errFull
	}
	stored, err := parseDevice(str(res, 1))
	if err != nil {
		return Device{}, fmt.Errorf("sessions: register: %w", err)
	}
	// The node index lives outside the account's slot, so it is written after
	// the device. Writing it on every registration also repairs an index lost
	// to a crash between the two steps.
	if err := s.rdb.Set(ctx, s.keys.node(stored.Node), nodeValue(account, stored.ID), ttl).Err(); err != nil {
		return Device{}, fmt.Errorf("sessions: register node: %w", err)
	}
	return stored, nil
}

// removeDevice removes a device, or only the given token of it; it reports
// whether the whole device went away.
func (s *Store) removeDevice(ctx context.Context, account, deviceID, token string, invalidSince time.Time) (status string, err error) {
	since := ""
	if !invalidSince.IsZero() {
		since = invalidSince.UTC().Format(time.RFC3339) // as Device.Registered: comparable as strings
	}
	res, err := s.run(ctx, removeScript, []string{s.keys.devices(account)}, deviceID, token, since)
	if err != nil {
		return "", fmt.Errorf("sessions: remove device: %w", err)
	}
	status = str(res, 0)
	if status != "removed" {
		return status, nil
	}
	if node := str(res, 1); node != "" {
		// Only remove the index if it still points at this device.
		key := s.keys.node(node)
		if v, err := s.rdb.Get(ctx, key).Result(); err == nil && v == nodeValue(account, deviceID) {
			s.rdb.Del(ctx, key)
		}
	}
	return status, nil
}

// devices returns every device of an account.
func (s *Store) devices(ctx context.Context, account string) ([]Device, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.devices(account)).Result()
	if err != nil {
		return nil, fmt.Errorf("sessions: devices: %w", err)
	}
	out := make([]Device, 0, len(m))
	for _, raw := range m {
		d, err := parseDevice(raw)
		if err != nil {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// deviceByNode finds the account and device a XEP-0357 node belongs to.
func (s *Store) deviceByNode(ctx context.Context, node string) (string, Device, error) {
	v, err := s.rdb.Get(ctx, s.keys.node(node)).Result()
	if errors.Is(err, redis.Nil) {
		return "", Device{}, ErrUnknownNode
	}
	if err != nil {
		return "", Device{}, fmt.Errorf("sessions: node lookup: %w", err)
	}
	account, id, ok := strings.Cut(v, "\n")
	if !ok {
		return "", Device{}, ErrUnknownNode
	}
	raw, err := s.rdb.HGet(ctx, s.keys.devices(account), id).Result()
	if errors.Is(err, redis.Nil) {
		return "", Device{}, ErrUnknownNode
	}
	if err != nil {
		return "", Device{}, fmt.Errorf("sessions: node lookup: %w", err)
	}
	d, err := parseDevice(raw)
	if err != nil || d.Node != node {
		return "", Device{}, ErrUnknownNode
	}
	return account, d, nil
}

func nodeValue(account, deviceID string) string { return account + "\n" + deviceID }

// ---- presence ---------------------------------------------------------------

func (s *Store) setPresence(ctx context.Context, account, resource string, available bool, at time.Time, ttl time.Duration) error {
	key := s.keys.presence(account)
	var err error
	if available {
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, resource, ms(at))
			p.PExpire(ctx, key, ttl)
			return nil
		})
	} else {
		err = s.rdb.HDel(ctx, key, resource).Err()
	}
	if err != nil {
		return fmt.Errorf("sessions: presence: %w", err)
	}
	return nil
}

// ---- timers -----------------------------------------------------------------

// Timer members: "c\n<account>\n<ref>" for a ring timeout, "m\n<account>\n<device>"
// for a held message alert. '\n' never appears in a JID or device id.
const (
	timerCall    = "c"
	timerMessage = "m"
)

func timerMember(kind, account, rest string) string { return kind + "\n" + account + "\n" + rest }

func parseTimer(member string) (kind, account, rest string, ok bool) {
	kind, tail, ok := strings.Cut(member, "\n")
	if !ok {
		return "", "", "", false
	}
	account, rest, ok = strings.Cut(tail, "\n")
	return kind, account, rest, ok
}

// dueTimers returns up to limit timer members due at now.
func (s *Store) dueTimers(ctx context.Context, now time.Time, limit int64) ([]string, error) {
	m, err := s.rdb.ZRangeByScore(ctx, s.keys.timers(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(ms(now), 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("sessions: timers: %w", err)
	}
	return m, nil
}

func (s *Store) addTimer(ctx context.Context, member string, due time.Time) error {
	return s.rdb.ZAddNX(ctx, s.keys.timers(), redis.Z{Score: float64(ms(due)), Member: member}).Err()
}

func (s *Store) doneTimer(ctx context.Context, member string) error {
	return s.rdb.ZRem(ctx, s.keys.timers(), member).Err()
}

// unwake forgets that a device was woken for a call, so that a later copy of
// its propose can wake it again (used when its push could not be queued).
func (s *Store) unwake(ctx context.Context, account, ref, deviceID string) error {
	return s.rdb.HDel(ctx, s.keys.woken(account, ref), deviceID).Err()
}

// ringing reports whether a call is still ringing. A call whose key expired
// is not.
func (s *Store) ringing(ctx context.Context, account, ref string) (bool, error) {
	state, err := s.rdb.HGet(ctx, s.keys.call(account, ref), "state").Result()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("sessions: call state: %w", err)
	}
	return state == StateRinging, nil
}
