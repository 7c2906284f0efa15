package sessions

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jinglepush/jinglepush/jingle"
)

// Presence records an available or unavailable presence of a user's
// resource (privileged or directed); other types are ignored. A presence
// Redis does not take is kept (the newest per resource) and written once
// Redis answers: a lost "unavailable" would keep a phone from ringing.
func (s *Service) Presence(ctx context.Context, p jingle.Presence) error {
	if !s.Serves(p.From) {
		return fmt.Errorf("%w: %s", ErrForeignDomain, p.From.Domain())
	}
	resource := p.From.Resourcepart()
	if resource == "" {
		return nil
	}
	var available bool
	switch p.Type {
	case "":
		available = true
	case "unavailable":
	default:
		return nil
	}
	account := p.From.Bare().String()
	at := s.now()
	if err := s.store.setPresence(ctx, account, resource, available, at, s.cfg.PresenceTTL); err != nil {
		s.presence.keep(s, account, resource, available, at)
		return err
	}
	return nil
}

// presenceRetry holds the presences Redis did not take.
type presenceRetry struct {
	mu      sync.Mutex
	pending map[[2]string]pendingPresence // account, resource
}

type pendingPresence struct {
	available bool
	at        time.Time
}

const maxPendingPresences = 100_000

func (r *presenceRetry) keep(s *Service, account, resource string, available bool, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[[2]string]pendingPresence)
	}
	k := [2]string{account, resource}
	if _, ok := r.pending[k]; !ok && len(r.pending) >= maxPendingPresences {
		s.m.presenceLost.Inc()
		return
	}
	r.pending[k] = pendingPresence{available: available, at: at}
}

// flush writes the kept presences, newest state of each resource only;
// what Redis still does not take stays for the next flush.
func (r *presenceRetry) flush(ctx context.Context, s *Service) {
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	written := 0
	var failed bool
	for k, p := range pending {
		if !failed {
			if err := s.store.setPresence(ctx, k[0], k[1], p.available, p.at, s.cfg.PresenceTTL); err == nil {
				written++
				continue
			}
			failed = true // Redis is still away: keep the rest for later
		}
		r.mu.Lock()
		if r.pending == nil {
			r.pending = make(map[[2]string]pendingPresence)
		}
		if _, newer := r.pending[k]; !newer {
			r.pending[k] = p
		}
		r.mu.Unlock()
	}
	if written > 0 {
		s.log.Info("presences kept while redis was away are recorded", "count", written)
	}
}
