package sessions

import "time"

// DefaultConfig returns the tuning a Service runs with unless told
// otherwise; cmd/jinglepush shows these values to the operator. NewService
// puts them in the zero fields of its Config, except PublishHold and
// WakeOnPublish: there zero is a choice (no hold, no wake), so a caller who
// wants the defaults passes DefaultConfig's.
func DefaultConfig() Config {
	return Config{
		RingTimeout:   45 * time.Second,
		StaleAfter:    30 * time.Second,
		Grace:         time.Minute,
		PublishHold:   2 * time.Second,
		WakeOnPublish: true,
		MaxDevices:    10,
		PresenceTTL:   7 * 24 * time.Hour,
		DeviceTTL:     90 * 24 * time.Hour,
		TimerInterval: 250 * time.Millisecond,
	}
}
