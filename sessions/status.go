package sessions

import (
	"regexp"
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
// the scripts write ST.created, ST.ended_now, ... and withStatuses puts
// the names in their place when the scripts load; a name missing here
// stops the package from loading, not a call, so the two sides cannot
// drift apart.
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

// scriptNames are the names withStatuses gives the scripts: every status,
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

// statusRef is a status name in a script's source: ST.ended_now.
var statusRef = regexp.MustCompile(`\bST\.([A-Za-z_][A-Za-z0-9_]*)`)

// withStatuses writes the statuses into a script's source: ST.ended_now
// becomes 'ended-now' before Redis sees the script, so a script run pays
// nothing for the names. A name that is not one of scriptNames panics
// when the package loads its scripts: a typo is caught by any test, not
// by a call that takes the branch.
func withStatuses(src string) string {
	names := make(map[string]string, len(scriptNames))
	for _, n := range scriptNames {
		names[strings.ReplaceAll(n, "-", "_")] = n
	}
	return statusRef.ReplaceAllStringFunc(src, func(ref string) string {
		name := ref[len("ST."):]
		v, ok := names[name]
		if !ok {
			panic("sessions: a script names the status ST." + name + ", which status.go does not define")
		}
		return "'" + v + "'"
	})
}
