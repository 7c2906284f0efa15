//go:build !unix

package testenv

// Processes cannot be paused here; Pause skips the test.
const (
	canPause        = false
	sigStop  signal = -1
	sigCont  signal = -2
)

func waitStopped(*Process, bool) {}
