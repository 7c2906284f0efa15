package sessions

import "time"

// DefaultConfig is the configuration the operator gets for every setting
// left out; cmd/jinglepush builds its own defaults from it.
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
