package pushnotify

import "time"

// DefaultConfig returns the tuning a Sender runs with unless told otherwise;
// cmd/jinglepush shows these values to the operator. New puts them in the
// zero fields of its Config.
func DefaultConfig() Config {
	return Config{
		Workers:         16,
		QueueSize:       10000,
		MaxInflight:     100,
		Timeout:         10 * time.Second,
		RetryMin:        200 * time.Millisecond,
		RetryMax:        5 * time.Second,
		DefaultDeadline: 10 * time.Minute,
		DrainTimeout:    10 * time.Second,
		BacklogCheck:    250 * time.Millisecond,
		Alerts: Alerts{
			Incoming: "Incoming call from %s",
			Missed:   "Missed call from %s",
			Message:  "New message",
		},
	}
}
