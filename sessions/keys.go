package sessions

import (
	"hash/crc32"
	"strconv"
	"strings"
)

// Every key lives under the prefix and a hash tag of jinglepush's own
// making: {b00} ... {b7f}, the account's bucket, a hash of the account.
// So every key of an account, its calls and the bucket's timers share one
// Redis Cluster slot whatever characters the account holds ('{', '}', a
// very long or non-ASCII name), a script never touches two slots, and the
// timers are spread over buckets instead of one hot key.
//
// Inside a bucket, names are "<kind>:<account>" or
// "<kind>:<account>/<caller>/<id>": bare JIDs hold no '/', so no two
// accounts, callers or calls share a name. The scripts build the names of
// an account's keys from the bucket's base (lua/prelude.lua); keys.go and
// the prelude are the two halves of one scheme.
//
//	base = prefix "{" bucket "}:"
//	d:<shard>              hash   account → its devices (record.go)
//	p:<account>            hash   resource → unix ms of its last available presence
//	pub:<account>          hash   device → unix ms of a publish no call claimed yet
//	held:<account>         hash   device → a message alert held for publish_hold
//	r:<account>            hash   ringing call ref → ring deadline
//	rw:<account>           hash   the same, for the calls that woke a device (what limits count)
//	rc:<account>           list   the account's newest calls (refs): publishes read 8, traces 20
//	c:<account>/<ref>      hash   one call: state, times, from, media, and w:<device> wake marks
//	rl:<account>/<caller>  string a caller's wake rate towards the account (GCRA)
//	tr:<account>/<ref>     list   the call's trace
//	tc:<account>           list   the account's recent calls that never rang (stale), for traces
//	t                      zset   the bucket's timers (ring timeouts, held alerts, wake leases)
//	ta, tp                 hash, zset  timer attempts, and timers parked after failing
//	bud:<name>             hash   a caller's or a domain's call budget (GCRA)
//	tok:<shard>            hash   token hash → the account holding the token
type keys struct {
	prefix string
}

// buckets is how many hash tags the keys spread over. It is part of the
// layout: changing it moves every key.
const buckets = 128

// deviceShards is how many device hashes a bucket has: about a hundred
// accounts each per million users.
const deviceShards = 64

func hashOf(s string) uint32 { return crc32.ChecksumIEEE([]byte(s)) }

// base is the prefix and hash tag shared by every key of name's bucket.
func (k keys) base(name string) string {
	return k.baseOf(hashOf(name))
}

func (k keys) baseOf(h uint32) string {
	var b strings.Builder
	b.Grow(len(k.prefix) + 7)
	b.WriteString(k.prefix)
	b.WriteString("{b")
	b.WriteString(hex2(byte(h % buckets)))
	b.WriteString("}:")
	return b.String()
}

// bucketBases lists the base of every bucket, for the timer loop.
func (k keys) bucketBases() []string {
	out := make([]string, buckets)
	for i := range out {
		out[i] = k.prefix + "{b" + hex2(byte(i)) + "}:"
	}
	return out
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// devices is the hash holding account's devices (field: the account).
func (k keys) devices(account string) string {
	h := hashOf(account)
	return k.baseOf(h) + "d:" + strconv.Itoa(int(h/buckets%deviceShards))
}

func (k keys) presence(account string) string { return k.base(account) + "p:" + account }
func (k keys) ringing(account string) string  { return k.base(account) + "r:" + account }

// call names one call by its ref, "<caller>/<id>".
func (k keys) call(account, ref string) string { return k.base(account) + "c:" + account + "/" + ref }

// recentCalls lists the account's newest calls, recentKept of them.
func (k keys) recentCalls(account string) string { return k.base(account) + "rc:" + account }

// recentKept is how many calls recentCalls keeps (propose.lua's LTRIM).
const recentKept = 20

// trace and traceCalls hold the trace of one call and the account's
// recent calls that never rang.
func (k keys) trace(account, ref string) string { return k.base(account) + "tr:" + account + "/" + ref }
func (k keys) traceCalls(account string) string { return k.base(account) + "tc:" + account }

// budget is the call budget of a caller (a bare JID) or of a remote domain
// ("domain:" + the domain), in the bucket of that name.
func (k keys) budget(name string) string { return k.base(name) + "bud:" + name }

// tokens is the hash that records which account holds a token; its fields
// are tokenHash(token).
func (k keys) tokens(token string) string {
	h := hashOf(token)
	return k.baseOf(h) + "tok:" + strconv.Itoa(int(h/buckets%deviceShards))
}

func (k keys) timers(base string) string { return base + "t" }

// timerClaims counts how often each of the bucket's timers was claimed.
func (k keys) timerClaims(base string) string { return base + "ta" }

// callRef names a call within its account: the caller's bare JID and the
// call id, which together identify a call (DESIGN.md section 4).
func callRef(caller, id string) string { return caller + "/" + id }

// splitRef undoes callRef. Bare JIDs hold no '/', so the first one splits.
func splitRef(ref string) (caller, id string, ok bool) {
	return strings.Cut(ref, "/")
}
