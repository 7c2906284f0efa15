package sessions

import (
	"context"
	"sync"
	"time"
)

// failOpen is the propose path when Redis fails: the call still rings on
// every device this process knows of the account, once per process.
func (s *Service) failOpen(ctx context.Context, p proposal, now time.Time, cause error) error {
	devices, ok := s.store.cache.get(p.account)
	if !ok {
		s.m.calls.WithLabelValues("propose", "redis_error").Inc()
		return cause
	}
	s.m.calls.WithLabelValues("propose", "fail_open").Inc()
	s.log.Error("redis failed: pushing to the devices known to this process", "error", cause, "call_id", p.id, "account", p.account)
	c := Call{Account: p.account, Caller: p.caller, ID: p.id, From: p.from, Media: p.media, Created: now, Deadline: now.Add(s.cfg.RingTimeout)}
	for _, d := range devices {
		kind := wakeKind(d)
		if kind == "" || !s.store.cache.firstWake(p.account+"\n"+c.Key().ref()+"\n"+d.ID, c.Deadline) {
			continue
		}
		s.wake(ctx, Wake{Call: c, Device: d, Kind: kind, Why: WhyFailOpen})
	}
	return nil
}

// wakeKind is how a call wakes d; lua/device.lua's wake_kind is its twin
// inside the scripts.
func wakeKind(d Device) WakeKind {
	switch {
	case d.VoIPToken != "":
		return WakeVoIP
	case d.Token != "":
		return WakeAlert
	}
	return ""
}

// deviceCache remembers the devices of accounts the Store read lately, so
// a call still rings when Redis fails (DESIGN.md section 6: fail open). It
// is a copy of what Redis answered, kept by the Store.
type deviceCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	m     map[string]cachedDevices
	woken map[string]time.Time // fail-open wakes, to push once per process
}

type cachedDevices struct {
	devices map[string]string // id → device JSON, decoded only when needed
	at      time.Time
}

func newDeviceCache(max int, ttl time.Duration) *deviceCache {
	return &deviceCache{max: max, ttl: ttl, m: make(map[string]cachedDevices), woken: make(map[string]time.Time)}
}

func (c *deviceCache) put(account string, devices map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Forget an arbitrary half: map order is random enough for a cache
		// that only matters while Redis is down.
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.m[account] = cachedDevices{devices: devices, at: time.Now()}
}

// update changes one device of a cached account (nil d removes it). Only
// complete lists are cached, so an account not cached stays so.
func (c *deviceCache) update(account, deviceID string, d *Device) {
	c.mu.Lock()
	e, ok := c.m[account]
	c.mu.Unlock()
	if !ok {
		return
	}
	devices := make(map[string]string, len(e.devices)+1)
	for id, raw := range e.devices {
		if id != deviceID {
			devices[id] = raw
		}
	}
	if d != nil {
		raw, err := d.marshal()
		if err != nil {
			return
		}
		devices[deviceID] = raw
	}
	c.put(account, devices)
}

func (c *deviceCache) get(account string) ([]Device, bool) {
	c.mu.Lock()
	e, ok := c.m[account]
	c.mu.Unlock()
	if !ok || time.Since(e.at) > c.ttl {
		return nil, false
	}
	devices := make([]Device, 0, len(e.devices))
	for _, raw := range e.devices {
		if d, err := parseDevice(raw); err == nil {
			devices = append(devices, d)
		}
	}
	return devices, true
}

// firstWake reports whether key (account, call, device) was not woken by
// this process yet, and remembers it until expires.
func (c *deviceCache) firstWake(key string, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for k, exp := range c.woken {
		if now.After(exp) {
			delete(c.woken, k)
		}
	}
	if _, seen := c.woken[key]; seen {
		return false
	}
	c.woken[key] = expires
	return true
}
