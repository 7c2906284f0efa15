package sessions

import (
	"sort"
	"strings"
)

// Call states (DESIGN.md section 4), as the call hash's "state" holds them.
const (
	StateRinging   = "ringing"
	StateAnswered  = "answered"
	StateDeclined  = "declined"
	StateCancelled = "cancelled"
	StateMissed    = "missed"
	StateMigrated  = "migrated"
	StateTieBreak  = "tie-break"
)

// The statuses the Lua scripts answer with. Go and Lua share these names:
// luaPrelude hands them to every script as the table ST (ST.created,
// ST.ended_now, ...), and a name missing there is an error in the script,
// not a silent nil, so the two sides cannot drift apart.
const (
	// propose.lua
	statusCreated = "created" // the call is new
	statusRinging = "ringing" // a copy of a call that rings (it may still wake more devices)
	statusStale   = "stale"   // the copy's <delay/> is older than stale_after
	statusEnded   = "ended"   // the call ended already (+ its state)
	statusLate    = "late"    // the call's ring deadline passed

	// end.lua
	statusEndedNow = "ended-now" // this event ended the call
	statusUnknown  = "unknown"   // no such call
	statusEarly    = "early"     // a ring timeout before the deadline

	// publish.lua
	statusCall    = "call"    // the publish belongs to ringing calls
	statusHold    = "hold"    // a message alert is held for publish_hold
	statusMessage = "message" // send a message alert now
	statusGone    = "gone"    // the device is no longer registered

	// message_due.lua
	statusNone = "none" // nothing held

	// propose.lua: why a new call may not ring (also refuse.lua)
	statusRefused   = "refused"
	refusedStranger = "stranger"      // calls.ring_from = "contacts" and the caller is not one
	refusedPair     = "pair_ringing"  // the caller already has a call ringing for the callee
	refusedBusy     = "callee_busy"   // the callee has calls.max_ringing calls ringing
	refusedDomain   = "domain_busy"   // the caller's remote domain has its share of them
	refusedRate     = "pair_rate"     // the caller woke the callee too often this minute
	refusedCaller   = "caller_budget" // the caller started too many calls this minute
	refusedRemote   = "domain_budget" // the caller's remote domain started too many
	statusAgain     = "again"         // the same attempt's wake, handed out again

	// publish.lua, wake.lua
	statusForbidden = "forbidden" // the secret does not match
	statusTaken     = "taken"     // another attempt holds the wake now

	// register.lua
	statusOK   = "ok"
	statusFull = "full" // the account is at its device limit

	// remove.lua
	statusRemoved = "removed" // the device is gone
	statusUpdated = "updated" // one token is gone, the device stays
	statusKept    = "kept"    // the device registered the token again since
)

// scriptNames are the names luaPrelude gives the scripts: every status,
// state, wake kind and wake reason they use.
var scriptNames = []string{
	statusCreated, statusRinging, statusStale, statusEnded, statusLate,
	statusEndedNow, statusUnknown, statusEarly,
	statusCall, statusHold, statusMessage, statusGone,
	statusNone, statusOK, statusFull, statusRemoved, statusUpdated, statusKept,
	statusRefused, refusedStranger, refusedPair, refusedBusy, refusedDomain, refusedRate, refusedCaller, refusedRemote,
	statusAgain, statusForbidden, statusTaken,
	StateRinging, StateAnswered, StateDeclined, StateCancelled, StateMissed, StateMigrated, StateTieBreak,
	string(WakeVoIP), string(WakeAlert),
	string(WhyPresence), string(WhyUndeliverable), string(WhyPublish),
}

// luaPrelude defines ST for the scripts: ST.ended_now is "ended-now", and
// reading a name that is not there raises an error.
func luaPrelude() string {
	names := map[string]string{}
	for _, n := range scriptNames {
		names[strings.ReplaceAll(n, "-", "_")] = n
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("local ST = setmetatable({")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + " = '" + names[k] + "'")
	}
	b.WriteString("}, {__index = function(_, k) error('sessions: no status ' .. tostring(k)) end})\n")
	return b.String()
}
