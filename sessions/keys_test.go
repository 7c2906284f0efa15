package sessions

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jinglepush/jinglepush/jingle"
)

// JIDs an outsider chooses cannot merge keys, cross slots or collide:
// every key of every account and call carries jinglepush's own hash tag
// first ({bNN}, the account's bucket), whatever braces, length or script
// the JIDs hold, so Redis Cluster hashes only that; and calls that differ
// in any way have keys of their own.
func TestKeysOutsidersCannotBreak(t *testing.T) {
	long := strings.Repeat("x", 1000)
	cases := []struct{ name, callee, caller string }{
		{"callee starting with }", "}bob@example.com", "alice@example.com"},
		{"callee holding { and }", "{b00}x}@example.com", "alice@example.com"},
		{"caller holding { and }", "bob2@example.com", "{b7f}@evil.example"},
		{"a 1000-byte localpart", long + "@example.com", long + "@evil.example"},
		{"non-ASCII", "ünïcødé@example.com", "пример@пример.рф"},
	}
	f := newFixture(t, nil)
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := strings.Replace(voipToken, "aaaa", "ab"+string(rune('0'+i))+"0", 1)
			f.register(t, tc.callee, "phone", "iphone", tok, alertToken)
			f.call(t, jingle.ActionPropose, tc.caller+"/pc", tc.callee, "c1", nil)
			// The same id from another caller is another call.
			f.call(t, jingle.ActionPropose, "other@example.net/pc", tc.callee, "c1", nil)
			if got := f.push.take(); len(got) != 2 || got[0].Wake.Call.Caller != tc.caller || got[1].Wake.Call.Caller != "other@example.net" {
				t.Fatalf("two callers, one id: %s", kinds(got))
			}
			f.call(t, jingle.ActionRetract, tc.caller+"/pc", tc.callee, "c1", nil)
			if got := f.push.take(); len(got) != 1 || got[0].End.Call.Caller != tc.caller {
				t.Fatalf("retract: %s", kinds(got))
			}
			f.call(t, jingle.ActionRetract, "other@example.net/pc", tc.callee, "c1", nil)
			f.push.take()
		})
	}
	tag := regexp.MustCompile(`^test:\{b[0-9a-f]{2}\}:`)
	keys, err := f.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !tag.MatchString(k) {
			t.Errorf("key %.80q does not start with the prefix and a bucket tag", k)
		}
	}
	// Each account's keys share its bucket, so a call's scripts touch one slot.
	for _, tc := range cases {
		base := f.store.keys.base(tc.callee)
		for _, k := range keys {
			if strings.Contains(k, ":"+tc.callee) && !strings.HasPrefix(k, base) {
				t.Errorf("key %.80q of %.40s is outside its bucket %s", k, tc.callee, base)
			}
		}
	}
}
