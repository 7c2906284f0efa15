package pushnotify

import (
	"testing"
	"time"
)

// BenchmarkVoIPPayload builds the body of a VoIP push, once per woken
// device on the hot path.
func BenchmarkVoIPPayload(b *testing.B) {
	c := Call{
		ID: "0f8fad5b-d9cb-469f-a165-70867728950e", UUID: "0f8fad5b-d9cb-469f-a165-70867728950e",
		From: "alice@example.com/phone", Caller: "alice@example.com", Media: []string{"audio", "video"},
		SentAt: time.UnixMilli(1764000000123), ExpiresAt: time.UnixMilli(1764000045123),
	}
	b.ReportAllocs()
	for b.Loop() {
		if p := VoIPPayload("bob@example.com", c); len(p) == 0 {
			b.Fatal("empty payload")
		}
	}
}
