package sessions

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

var _ Feedback = (*Store)(nil)

// TokenDead drops a token the push service called dead, and the device
// with it when it has no token left (Feedback). A device that registered
// again after t.InvalidSince keeps its token: Apple counts a token
// registered after that time as valid again.
func (s *Store) TokenDead(ctx context.Context, t DeadToken) (bool, error) {
	status, err := s.removeDevice(ctx, t.Account, t.DeviceID, t.Token, t.InvalidSince)
	if err != nil {
		return false, err
	}
	return status == statusRemoved || status == statusUpdated, nil
}

// StillRinging reports whether a call still rings (Feedback). A call whose
// key expired does not.
func (s *Store) StillRinging(ctx context.Context, c CallKey) (bool, error) {
	state, err := s.rdb.HGet(ctx, s.keys.call(c.Account, c.ref()), "state").Result()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("sessions: call state: %w", err)
	}
	return state == StateRinging, nil
}
