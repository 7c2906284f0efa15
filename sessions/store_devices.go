package sessions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

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
	if str(res, 0) == statusFull {
		return Device{}, errFull
	}
	stored, err := parseDevice(str(res, 1))
	if err != nil {
		return Device{}, fmt.Errorf("sessions: register: %w", err)
	}
	s.cache.update(account, stored.ID, &stored)
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
	if status == statusRemoved || status == statusUpdated {
		s.cache.update(account, deviceID, nil)
	}
	if status != statusRemoved {
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
