package jingle

// The two halves of ParseCall and ParsePresence, for the tests that hold
// the fast paths to the slow ones.
var (
	ParseCallFast     = parseCallFast
	ParseCallSlow     = parseCallSlow
	ParsePresenceFast = parsePresenceFast
	ParsePresenceSlow = parsePresenceSlow
)
