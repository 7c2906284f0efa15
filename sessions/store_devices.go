package sessions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// errFull is register.lua's answer for an account at its device limit.
var errFull = errors.New("sessions: device limit reached")

// putDevice stores d (see register.lua) and returns the device as stored:
// an existing device keeps its node and secret. A token that another
// account held moves here: it is taken from the other account.
func (s *Store) putDevice(ctx context.Context, account string, d Device, max int, ttl time.Duration) (Device, error) {
	raw, err := encodeDevice(d)
	if err != nil {
		return Device{}, err
	}
	base := s.keys.base(account)
	res, err := s.run(ctx, registerScript, []string{s.keys.devices(account)}, s.args(base, account, string(raw), max, ttl.Milliseconds())...)
	if err != nil {
		return Device{}, fmt.Errorf("sessions: register: %w", err)
	}
	if str(res, 0) == statusFull {
		return Device{}, errFull
	}
	stored, err := decodeDevice(account, []byte(str(res, 1)))
	if err != nil {
		return Device{}, fmt.Errorf("sessions: register: %w", err)
	}
	s.cache.update(account, stored.ID, &stored)
	// The token index lives in other slots, so it is written after the
	// device. Writing it on every registration also repairs an index lost
	// to a crash between the two steps.
	for i := 2; i < len(res); i++ {
		s.forgetToken(ctx, account, str(res, i))
	}
	for _, tok := range []string{stored.VoIPToken, stored.Token} {
		if tok == "" {
			continue
		}
		rawTok, _ := hex.DecodeString(tok)
		old, err := s.tokenOp(ctx, "claim", account, string(rawTok), ttl)
		if err != nil {
			return Device{}, err
		}
		if old != "" && old != account {
			// Registered again under another account (a user who switched
			// accounts in the app): the old account must not ring it.
			if _, err := s.removeToken(ctx, old, "", string(rawTok), time.Time{}); err != nil {
				return Device{}, err
			}
		}
	}
	return stored, nil
}

// tokenOp claims a raw token for account or forgets it (tokens.lua),
// returning the account that held it before.
func (s *Store) tokenOp(ctx context.Context, op, account, rawToken string, ttl time.Duration) (string, error) {
	sum := sha256.Sum256([]byte(rawToken))
	th := string(sum[:8])
	key := s.keys.tokens(rawToken)
	res, err := s.run(ctx, tokensScript, []string{key}, s.args(s.keys.base(rawToken), account, op, th, ttl.Milliseconds())...)
	if err != nil {
		return "", fmt.Errorf("sessions: token index: %w", err)
	}
	return str(res, 0), nil
}

// forgetToken drops a raw token from the index if account holds it there;
// a failure only leaves an entry that a later lookup finds stale.
func (s *Store) forgetToken(ctx context.Context, account, rawToken string) {
	_, _ = s.tokenOp(ctx, "forget", account, rawToken, 0)
}

// removeDevice removes a device (see remove.lua).
func (s *Store) removeDevice(ctx context.Context, account, deviceID string) (status string, err error) {
	return s.removeToken(ctx, account, deviceID, "", time.Time{})
}

// RemoveDevice removes one device of an account (for the devices
// command) and reports whether it was there.
func (s *Store) RemoveDevice(ctx context.Context, account, deviceID string) (bool, error) {
	status, err := s.removeDevice(ctx, account, deviceID)
	return status == statusRemoved, err
}

// removeToken removes a raw token from the account's devices (from the
// given device, or any), or the whole device when rawToken is "". A
// device that registered after invalidSince keeps its token.
func (s *Store) removeToken(ctx context.Context, account, deviceID, rawToken string, invalidSince time.Time) (string, error) {
	since := int64(0)
	if !invalidSince.IsZero() {
		since = invalidSince.Unix()
	}
	base := s.keys.base(account)
	res, err := s.run(ctx, removeScript, []string{s.keys.devices(account)}, s.args(base, account, deviceID, rawToken, since)...)
	if err != nil {
		return "", fmt.Errorf("sessions: remove device: %w", err)
	}
	status := str(res, 0)
	if status == statusRemoved || status == statusUpdated {
		s.cache.drop(account)
		for i := 1; i < len(res); i++ {
			s.forgetToken(ctx, account, str(res, i))
		}
	}
	return status, nil
}

// Devices returns every device of an account (for the devices command and
// tests), aged ones included.
func (s *Store) Devices(ctx context.Context, account string) ([]Device, error) {
	raw, err := s.rdb.HGet(ctx, s.keys.devices(account), account).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: devices: %w", err)
	}
	return decodeDevices(account, []byte(raw))
}

// sweep drops the aged devices of one part of one devices hash and returns
// the cursor to go on from (0: the hash is done).
func (s *Store) sweep(ctx context.Context, bucket, shard int, cursor string, deviceTTL time.Duration) (string, error) {
	base := s.keys.bucketBases()[bucket]
	key := fmt.Sprintf("%sd:%d", base, shard)
	res, err := s.run(ctx, sweepScript, []string{key}, s.args(base, "", cursor, deviceTTL.Milliseconds(), 100)...)
	if err != nil {
		return "0", fmt.Errorf("sessions: sweep: %w", err)
	}
	return str(res, 0), nil
}

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
