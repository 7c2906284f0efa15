package pushnotify

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var testCall = Call{
	ID: "c1", UUID: "3f1c6a0e-7b0e-4d55-9d1e-8f7b1c2d3e4f", From: "alice@example.com/phone", Caller: "alice@example.com",
	Media: []string{"audio"}, SentAt: time.UnixMilli(1764000000123), ExpiresAt: time.UnixMilli(1764000045123),
}

// The VoIP body of DESIGN.md section 4, byte for byte.
func TestVoIPPayloadContract(t *testing.T) {
	got := string(VoIPPayload("bob@example.com", testCall))
	want := `{"aps":{},"account":"bob@example.com","call":{"id":"c1","uuid":"3f1c6a0e-7b0e-4d55-9d1e-8f7b1c2d3e4f",` +
		`"from":"alice@example.com/phone","caller":"alice@example.com","media":["audio"],"sent_at":1764000000123,"expires_at":1764000045123}}`
	if got != want {
		t.Errorf("VoIP payload\n got %s\nwant %s", got, want)
	}
	bg := string(BackgroundPayload("bob@example.com", testCall, EventAnsweredElsewhere))
	if !strings.HasPrefix(bg, `{"aps":{"content-available":1},"account":"bob@example.com","event":"answered-elsewhere","call":{"id":"c1",`) {
		t.Errorf("background payload %s", bg)
	}
	msg := string(MessagePayload("bob@example.com", "", "", "New message"))
	if msg != `{"aps":{"alert":{"body":"New message"},"sound":"default","mutable-content":1},"account":"bob@example.com"}` {
		t.Errorf("message payload %s", msg)
	}
}

// Long names are cut so that no body passes Apple's limits: PayloadTooLarge
// cannot happen. Ids and times are never cut.
func TestPayloadsFitApplesLimits(t *testing.T) {
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	c := testCall
	c.Caller = long("é", 2000) + "@example.com" // 4000+ bytes of two-byte runes
	c.From = c.Caller + "/" + long("<&>", 700)  // characters JSON may escape
	account := long("b", 1000) + "@example.com"

	for _, p := range []struct {
		name  string
		body  []byte
		limit int
	}{
		{"voip", VoIPPayload(account, c), MaxVoIPPayload},
		{"call alert", CallAlertPayload(account, c, EventMissed, "Missed call from "+c.Caller), MaxPayload},
		{"background", BackgroundPayload(account, c, EventDeclinedElsewhere), MaxPayload},
		{"message", MessagePayload(account, long("s", 3000), long("ü\u2028", 3000), "New message"), MaxPayload},
	} {
		if len(p.body) > p.limit {
			t.Errorf("%s: %d bytes, over %d", p.name, len(p.body), p.limit)
		}
		if len(p.body) < p.limit-200 {
			t.Errorf("%s: %d bytes: cut more than needed", p.name, len(p.body))
		}
		if !utf8.Valid(p.body) || !json.Valid(p.body) {
			t.Errorf("%s: not valid UTF-8 JSON", p.name)
		}
		var b struct {
			Call *struct{ ID, UUID string } `json:"call"`
		}
		if err := json.Unmarshal(p.body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Call != nil && (b.Call.ID != c.ID || b.Call.UUID != c.UUID) {
			t.Errorf("%s: ids changed: %+v", p.name, b.Call)
		}
		if !strings.Contains(string(p.body), "…") {
			t.Errorf("%s: no cut is marked", p.name)
		}
	}
	// Short texts are left alone, <, > and & unescaped.
	if got := string(MessagePayload("bob@example.com", "alice", "a <b> & c", "")); !strings.Contains(got, `"body":"a <b> & c"`) {
		t.Errorf("message payload %s", got)
	}
}

// A body over the limit (here: a call id no cut can shorten) is refused by
// Push at once rather than sent for a 413.
func TestPushRefusesWhatAPNsWould(t *testing.T) {
	h := start(t, newMemAPNs(), Config{})
	huge := testCall
	huge.ID = strings.Repeat("x", 6000)
	n := voipPush(tokOK, time.Now().Add(time.Minute))
	n.Payload = VoIPPayload("bob@example.com", huge)

	err := h.s.Push(context.Background(), n)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "5120") {
		t.Errorf("Push of %d bytes = %v", len(n.Payload), err)
	}
	wantCount(t, h.s.m.dropped, 1, "voip", "payload_too_large")

	for name, mod := range map[string]func(*Notification){
		"path in token": func(n *Notification) { n.Token = "../../x" },
		"empty token":   func(n *Notification) { n.Token = "" },
		"long token":    func(n *Notification) { n.Token = strings.Repeat("ab", 101) },
		"kind":          func(n *Notification) { n.Kind = "mdm" },
		"no payload":    func(n *Notification) { n.Payload = nil },
		"apns-id":       func(n *Notification) { n.ID = "not-a-uuid" },
		"alert of 4097": func(n *Notification) { n.Kind, n.Payload = KindAlert, make([]byte, MaxPayload+1) },
	} {
		n := voipPush(tokOK, time.Now().Add(time.Minute))
		mod(&n)
		if err := h.s.Push(context.Background(), n); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Push = %v, want ErrInvalid", name, err)
		}
	}
	n = voipPush(tokOK, time.Now().Add(time.Minute))
	n.BundleID = "com.example.unknown"
	if err := h.s.Push(context.Background(), n); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("Push = %v, want ErrUnknownApp", err)
	}
}
