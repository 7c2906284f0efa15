package sessions

import (
	"context"
	"sync"
	"time"
)

// When Redis does not answer, a call still rings (DESIGN.md section 6:
// fail open) on the devices this process read from Redis lately, under the
// same rules as the script's, as far as memory knows them: a stale
// propose never rings, and a device whose resource was available is woken
// only by a copy the server could not deliver. What rang is remembered;
// once Redis answers, each such call is recorded there with those devices
// marked delivered, so the next copy of it rings nothing twice, in this
// process or another.

// failOpen is the propose path when Redis fails.
func (s *Service) failOpen(ctx context.Context, p proposal, arrived time.Time, cause error) error {
	known, ok := s.store.cache.get(p.account)
	if !ok {
		s.m.calls.WithLabelValues("propose", "redis_error").Inc()
		s.outage.begin(s, cause)
		return cause
	}
	if !p.delay.IsZero() && arrived.Sub(p.delay) > s.cfg.StaleAfter {
		s.m.calls.WithLabelValues("propose", statusStale).Inc()
		return nil
	}
	s.outage.begin(s, cause)
	s.m.failOpen.Inc()
	s.m.calls.WithLabelValues("propose", "fail_open").Inc()
	c := Call{Account: p.account, Caller: p.caller, ID: p.id, From: p.from, Media: p.media, Created: arrived, Deadline: arrived.Add(s.cfg.RingTimeout)}
	available := make(map[string]bool, len(known.available))
	for _, r := range known.available {
		available[r] = true
	}
	var pushed []string
	for _, d := range known.devices {
		kind := wakeKind(d)
		if kind == "" || (!p.undeliverable && d.Resource != "" && available[d.Resource]) {
			continue
		}
		if !s.store.cache.firstWake(p.account+"\n"+c.Key().ref()+"\n"+d.ID, c.Deadline) {
			continue
		}
		s.wake(ctx, Wake{Call: c, Device: d, Kind: kind, Why: WhyFailOpen, Attempt: p.attempt})
		pushed = append(pushed, d.ID)
	}
	if len(pushed) > 0 {
		s.outage.remember(p, pushed)
	}
	return nil
}

// wakeKind is how a call wakes d; lua/prelude.lua's wake_kind is its twin
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

// outage is what the Service knows of a Redis outage: whether it logged
// it, and the calls it rang from memory meanwhile.
type outage struct {
	mu      sync.Mutex
	since   time.Time // zero: no outage
	calls   []rungFromMemory
	dropped int // calls not remembered: the list was full
}

type rungFromMemory struct {
	p      proposal
	pushed []string
}

const maxRemembered = 10_000

// begin notes a failure; the first of an outage is logged, not the others.
func (o *outage) begin(s *Service, cause error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.since = time.Now()
		s.log.Error("redis does not answer: calls ring on the devices this process knows (fail open) until it does",
			"error", cause, "note", "logged once per outage")
	}
}

func (o *outage) remember(p proposal, pushed []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.calls) >= maxRemembered {
		o.dropped++
		return
	}
	o.calls = append(o.calls, rungFromMemory{p: p, pushed: pushed})
}

// pushedFor returns the devices this process rang from memory for p's
// call during the outage, if it did.
func (o *outage) pushedFor(p proposal) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.calls {
		if r.p.account == p.account && r.p.caller == p.caller && r.p.id == p.id {
			return r.pushed
		}
	}
	return nil
}

// answered ends an outage once Redis answers: the calls rung meanwhile are
// recorded (recordOutage runs them).
func (o *outage) answered(s *Service) {
	o.mu.Lock()
	if o.since.IsZero() {
		o.mu.Unlock()
		return
	}
	since, calls, dropped := o.since, o.calls, o.dropped
	o.since, o.calls, o.dropped = time.Time{}, nil, 0
	o.mu.Unlock()
	s.log.Info("redis answers again", "down_for", time.Since(since).Round(time.Millisecond), "rang_from_memory", len(calls), "not_recorded", dropped)
	go s.recordOutage(calls)
}

// recordOutage writes the calls rung from memory into Redis. A call still
// ringing gets the devices that rang marked delivered; the others it has
// are woken now if the rules say so.
func (s *Service) recordOutage(calls []rungFromMemory) {
	for _, r := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p := r.p
		p.attempt, p.pushed = newAttempt(), r.pushed
		p.age = max(s.now().Sub(p.arrived), 0)
		res, err := s.store.propose(ctx, p)
		if err != nil {
			s.log.Warn("could not record a call rung while redis was away", "call_id", p.id, "account", p.account, "error", err)
		}
		for _, w := range res.wakes {
			s.wake(ctx, Wake{Call: res.call, Device: w.device, Kind: w.kind, Why: w.why, Attempt: p.attempt})
		}
		cancel()
	}
}

// ---- the cache

// deviceCache remembers the devices of accounts the Store read lately,
// with the resources that were available, so a call still rings when
// Redis fails. It is a copy of what Redis answered, kept by the Store.
type deviceCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	m     map[string]cachedDevices
	woken map[string]time.Time // fail-open wakes, to push once per process
}

type cachedDevices struct {
	devices   []Device
	available []string
	at        time.Time
}

func newDeviceCache(max int, ttl time.Duration) *deviceCache {
	return &deviceCache{max: max, ttl: ttl, m: make(map[string]cachedDevices), woken: make(map[string]time.Time)}
}

func (c *deviceCache) put(account string, devices []Device, available []string) {
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
	c.m[account] = cachedDevices{devices: devices, available: available, at: time.Now()}
}

// update changes one device of a cached account. Only complete lists are
// cached, so an account not cached stays so.
func (c *deviceCache) update(account, deviceID string, d *Device) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[account]
	if !ok {
		return
	}
	devices := make([]Device, 0, len(e.devices)+1)
	for _, old := range e.devices {
		if old.ID != deviceID {
			devices = append(devices, old)
		}
	}
	if d != nil {
		devices = append(devices, *d)
	}
	e.devices = devices
	c.m[account] = e
}

// drop forgets an account: the next read from Redis fills it again.
func (c *deviceCache) drop(account string) {
	c.mu.Lock()
	delete(c.m, account)
	c.mu.Unlock()
}

func (c *deviceCache) get(account string) (cachedDevices, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[account]
	if !ok || time.Since(e.at) > c.ttl {
		return cachedDevices{}, false
	}
	return e, true
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
