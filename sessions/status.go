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
	statusRetry   = "retry"   // a call started since the caller read the calls

	// message_due.lua
	statusNone = "none" // nothing held

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
	statusCall, statusHold, statusMessage, statusGone, statusRetry,
	statusNone, statusOK, statusFull, statusRemoved, statusUpdated, statusKept,
	StateRinging, StateAnswered, StateDeclined, StateCancelled, StateMissed,
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
