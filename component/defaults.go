package component

import "time"

// DefaultConfig returns the tuning a Component runs with unless told
// otherwise; cmd/jinglepush shows these values to the operator. New puts
// them in the zero fields of its Config, except Keepalive: there zero means
// off, so a caller who wants the keepalive passes DefaultConfig's.
func DefaultConfig() Config {
	return Config{
		ReconnectMin:  500 * time.Millisecond,
		ReconnectMax:  30 * time.Second,
		Keepalive:     60 * time.Second,
		Workers:       8,
		QueueSize:     1024,
		MaxStanzaSize: 65536,
		Version:       "dev",
		DrainTimeout:  5 * time.Second,
	}
}
