package sessions

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

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
