package sessions

import (
	"context"
	"fmt"

	"github.com/jinglepush/jinglepush/jingle"
)

// Presence records an available or unavailable presence of a user's
// resource (privileged or directed); other types are ignored.
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
	return s.store.setPresence(ctx, p.From.Bare().String(), resource, available, s.cfg.Now(), s.cfg.PresenceTTL)
}
