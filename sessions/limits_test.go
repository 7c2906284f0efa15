package sessions

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jinglepush/jinglepush/jingle"
)

// defaultLimits is a fixture with the limits operators get.
func defaultLimits(c *Config) {
	d := DefaultConfig()
	c.OnePerCaller, c.MaxRinging, c.MaxRemoteDomain = d.OnePerCaller, d.MaxRinging, d.MaxRemoteDomain
	c.PairPerMinute, c.CallerPerMinute, c.DomainPerMinute = d.PairPerMinute, d.CallerPerMinute, d.DomainPerMinute
}

func (f *fixture) refusedCount(reason string) float64 {
	return testutil.ToFloat64(f.svc.m.refused.WithLabelValues(reason))
}

// A stranger's flood of distinct proposes rings the phone once; a
// contact's call in the middle rings at once; the flood is refused by
// reason, counted, and logged once.
func TestFloodFromOneCaller(t *testing.T) {
	logs := &lockedBuffer{}
	f := newFixture(t, defaultLimits)
	f.svc.log = slogTo(logs)
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	for i := range 200 {
		f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", "flood"+strconv.Itoa(i), nil)
		if i == 100 {
			f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "contact", nil)
		}
	}
	got := f.push.take()
	if kinds(got) != "voip:iphone,voip:iphone" || got[0].Wake.Call.ID != "flood0" || got[1].Wake.Call.ID != "contact" {
		t.Fatalf("the flood and the contact's call: %s", kinds(got))
	}
	if n := f.refusedCount(refusedPair); n != 199 {
		t.Errorf("refused one-call-per-caller: %v, want 199", n)
	}
	if n := strings.Count(logs.String(), "call refused"); n != 1 {
		t.Errorf("the refusals were logged %d times, want once", n)
	}
	// The flood spent the stranger's budget (20 new calls a minute, to
	// anyone): once its first call ended, its next ones are refused for
	// that, until a minute has passed.
	f.call(t, jingle.ActionRetract, "mallory@evil.example/x", "bob@example.com", "flood0", nil)
	f.push.take()
	f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", "again", nil)
	if got := f.push.take(); len(got) != 0 || f.refusedCount(refusedCaller) == 0 {
		t.Errorf("over budget: %s, caller_budget refusals %v", kinds(got), f.refusedCount(refusedCaller))
	}
	f.clock.add(time.Minute)
	f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", "next-minute", nil)
	if got := f.push.take(); len(got) != 1 {
		t.Errorf("a minute later: %s", kinds(got))
	}
}

// A caller wakes one callee at most three times a minute, however its
// calls end.
func TestWakesPerCallerAndCallee(t *testing.T) {
	f := newFixture(t, func(c *Config) { defaultLimits(c); c.CallerPerMinute = 0 })
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	rang := 0
	for i := range 10 {
		id := "c" + strconv.Itoa(i)
		f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", id, nil)
		if len(f.push.take()) > 0 {
			rang++
		}
		f.call(t, jingle.ActionRetract, "mallory@evil.example/x", "bob@example.com", id, nil)
		f.push.take()
	}
	if rang != 3 || f.refusedCount(refusedRate) != 7 {
		t.Errorf("%d of 10 calls rang within the minute (want 3), %v refused for the rate (want 7)", rang, f.refusedCount(refusedRate))
	}
	f.clock.add(20 * time.Second) // one more every 20 s
	f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", "later", nil)
	if got := f.push.take(); len(got) != 1 {
		t.Errorf("20 s later: %s", kinds(got))
	}
}

// A flood from many callers of one remote domain takes at most its share
// of the callee's ringing calls and its domain budget: a contact still
// rings; calls from elsewhere still ring.
func TestFloodFromOneDomain(t *testing.T) {
	f := newFixture(t, func(c *Config) { defaultLimits(c); c.DomainPerMinute = 50 })
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, "")
	f.register(t, "carol@example.com", "phone", "iphone", strings.Replace(voipToken, "aaaa", "cccc", 1), "")
	for i := range 100 {
		f.call(t, jingle.ActionPropose, "bot"+strconv.Itoa(i)+"@evil.example/x", "bob@example.com", "f"+strconv.Itoa(i), nil)
		if i == 50 {
			f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "contact", nil)
		}
	}
	var ids []string
	for _, d := range f.push.take() {
		ids = append(ids, d.Wake.Call.ID)
	}
	if strings.Join(ids, ",") != "f0,f1,contact" {
		t.Fatalf("rang: %v, want two from the domain and the contact", ids)
	}
	if n := f.refusedCount(refusedDomain); n == 0 {
		t.Errorf("no refusal for the domain's share of bob's ringing calls")
	}
	// carol is another callee: the domain's budget (50 a minute) was spent
	// by the flood on bob, so its calls to her are refused too; a local
	// caller's are not.
	f.call(t, jingle.ActionPropose, "bot999@evil.example/x", "carol@example.com", "g1", nil)
	f.call(t, jingle.ActionPropose, "dave@example.com/pc", "carol@example.com", "g2", nil)
	var got []string
	for _, d := range f.push.take() {
		got = append(got, d.Wake.Call.ID)
	}
	if strings.Join(got, ",") != "g2" || f.refusedCount(refusedRemote) == 0 {
		t.Errorf("after the flood, carol's calls: %v, domain budget refusals %v", got, f.refusedCount(refusedRemote))
	}
}

// Limits never apply to a call's end or to a call that rings already:
// copies, retracts and answers go through whatever the budgets say.
func TestLimitsSpareEndsAndCopies(t *testing.T) {
	f := newFixture(t, func(c *Config) { defaultLimits(c); c.CallerPerMinute = 1 })
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", undeliverable)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("a call and its copy: %s", kinds(got))
	}
	f.call(t, jingle.ActionRetract, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); kinds(got) != "alert:iphone" {
		t.Fatalf("the end of a call over budget: %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c2", nil)
	if got := f.push.take(); len(got) != 0 || f.refusedCount(refusedCaller) != 1 {
		t.Fatalf("a second call within the caller's budget of 1: %s", kinds(got))
	}
}

// With ring_from = contacts, a stranger's call wakes nothing; the user gets
// a missed-call alert once per caller and window; a contact's call rings.
func TestRingFromContacts(t *testing.T) {
	rosters := rosterTable{"bob@example.com": {"alice@example.com": true}}
	f := newFixture(t, func(c *Config) { c.RingFrom = RingFromContacts })
	f.svc.rosters = rosters
	f.register(t, "bob@example.com", "phone", "iphone", voipToken, alertToken)
	f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", "s1", nil)
	got := f.push.take()
	if kinds(got) != "alert:iphone" || got[0].End == nil || got[0].End.State != EndMissed || got[0].End.Call.Caller != "mallory@evil.example" {
		t.Fatalf("a stranger's call: %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", "s2", nil)
	if got := f.push.take(); len(got) != 0 {
		t.Fatalf("a stranger's second call in the window: %s", kinds(got))
	}
	f.call(t, jingle.ActionPropose, "alice@example.com/pc", "bob@example.com", "c1", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("a contact's call: %s", kinds(got))
	}
	if n := f.refusedCount(refusedStranger); n != 2 {
		t.Errorf("stranger refusals %v, want 2", n)
	}
	// The roster changes: mallory is a contact now.
	rosters["bob@example.com"]["mallory@evil.example"] = true
	f.call(t, jingle.ActionPropose, "mallory@evil.example/x", "bob@example.com", "s3", nil)
	if got := f.push.take(); kinds(got) != "voip:iphone" {
		t.Fatalf("a new contact's call: %s", kinds(got))
	}
}

type rosterTable map[string]map[string]bool

func (r rosterTable) Subscribed(_ context.Context, account, contact string) (bool, error) {
	return r[account][contact], nil
}
