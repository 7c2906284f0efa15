package sessions

import "time"

// DefaultConfig returns the tuning a Service runs with unless told
// otherwise; cmd/jinglepush shows these values to the operator. NewService
// puts them in the zero fields of its Config, except PublishHold,
// WakeOnPublish and the limits: there zero is a choice (no hold, no wake,
// no limit), so a caller who wants the defaults passes DefaultConfig's.
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
		PublishWindow: 10 * time.Second,
		Lease:         5 * time.Second,
		FailOpenAfter: 2 * time.Second,

		OnePerCaller:    true,
		MaxRinging:      4,
		MaxRemoteDomain: 2,
		PairPerMinute:   3,
		CallerPerMinute: 20,
		DomainPerMinute: 200,
		RingFrom:        RingFromAnyone,
		StrangerWindow:  10 * time.Minute,
	}
}
