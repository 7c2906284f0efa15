package sessions

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Timer members, in the bucket's timers:
//
//	"c\n<account>\n<ref>"           a call's ring timeout
//	"m\n<account>\n<device>"        a held message alert
//	"w\n<account>\n<ref>\n<device>" a wake's lease
//
// '\n' never appears in a bare JID or a device id; a call id may hold one,
// so a lease's ref is what lies between the account and the last '\n'.
const (
	timerCall    = "c"
	timerMessage = "m"
	timerLease   = "w"
)

// leaseMember is the timer of a wake's lease (prelude.lua's lease_member).
func leaseMember(account, ref, dev string) string {
	return timerLease + "\n" + account + "\n" + ref + "\n" + dev
}

type timer struct {
	member                  string
	kind, account, ref, dev string
	claims                  int64 // how often it was claimed; -1: parked now
}

func parseTimer(member string) (timer, bool) {
	t := timer{member: member}
	kind, tail, ok := strings.Cut(member, "\n")
	if !ok {
		return t, false
	}
	account, rest, ok := strings.Cut(tail, "\n")
	if !ok {
		return t, false
	}
	t.kind, t.account = kind, account
	switch kind {
	case timerCall:
		t.ref = rest
	case timerMessage:
		t.dev = rest
	case timerLease:
		i := strings.LastIndexByte(rest, '\n')
		if i < 0 {
			return t, false
		}
		t.ref, t.dev = rest[:i], rest[i+1:]
	default:
		return t, false
	}
	return t, true
}

// claimTimers claims up to limit due timers of the bucket with base base
// (claim.lua): each is this process's to fire for claim; one claimed
// maxClaims times without being done with is parked.
func (s *Store) claimTimers(ctx context.Context, base string, limit int, claim time.Duration, maxClaims int) ([]timer, error) {
	res, err := s.run(ctx, claimScript, []string{s.keys.timers(base)}, s.args(base, "", limit, claim.Milliseconds(), maxClaims)...)
	if err != nil {
		return nil, fmt.Errorf("sessions: timers: %w", err)
	}
	out := make([]timer, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		t, ok := parseTimer(str(res, i))
		if !ok {
			t = timer{member: str(res, i)}
		}
		t.claims = num(res, i+1)
		out = append(out, t)
	}
	return out, nil
}

// dropTimer removes a timer that cannot be acted on (a member this
// version does not read).
func (s *Store) dropTimer(ctx context.Context, base, member string) error {
	return s.rdb.ZRem(ctx, s.keys.timers(base), member).Err()
}
