package pushnotify

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/sessions"
)

const (
	tVoIP  = "aaaa000000000000000000000000000000000000000000000000000000000001"
	tAlert = "bbbb000000000000000000000000000000000000000000000000000000000001"
)

// decisionSender is a Sender that never sends: only its conversion of
// sessions' decisions into Notifications is used.
func decisionSender(t *testing.T, fb sessions.Feedback) *Sender {
	t.Helper()
	s, err := New(Config{Apps: []App{{BundleID: "com.example.chat"}}, DryRun: true}, fb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func decisionCall() sessions.Call {
	created := time.Now().Truncate(time.Millisecond)
	return sessions.Call{
		Account: "bob@example.com", Caller: "alice@example.com", ID: "c1", From: "alice@example.com/pc",
		Media: []string{"audio"}, Created: created, Deadline: created.Add(45 * time.Second),
	}
}

func testDevice() sessions.Device {
	return sessions.Device{ID: "iphone", VoIPToken: tVoIP, Token: tAlert, BundleID: "com.example.chat", Environment: "production"}
}

// The VoIP push of a wake has the contract's headers and body (DESIGN.md
// section 4).
func TestWakeNotification(t *testing.T) {
	s := decisionSender(t, nil)
	c := decisionCall()
	n := s.wakeNotification(sessions.Wake{Call: c, Device: testDevice(), Kind: sessions.WakeVoIP, Why: sessions.WhyPresence})
	if n.Kind != KindVoIP || n.Token != tVoIP || n.Topic() != "com.example.chat.voip" || n.Priority() != 10 ||
		n.CollapseID != CallUUID("alice@example.com", "c1") || !n.Expiration.Equal(c.Deadline) || !n.Deadline.Equal(c.Deadline) {
		t.Errorf("VoIP push %+v", n)
	}
	var body struct {
		Account string `json:"account"`
		Call    struct {
			ID, UUID, From, Caller string
			Media                  []string
			SentAt                 int64 `json:"sent_at"`
			ExpiresAt              int64 `json:"expires_at"`
		} `json:"call"`
	}
	if err := json.Unmarshal(n.Payload, &body); err != nil {
		t.Fatal(err)
	}
	if body.Account != "bob@example.com" || body.Call.ID != "c1" || body.Call.From != "alice@example.com/pc" ||
		body.Call.Caller != "alice@example.com" || body.Call.SentAt != c.Created.UnixMilli() ||
		body.Call.ExpiresAt != c.Deadline.UnixMilli() || len(body.Call.Media) != 1 || body.Call.UUID != n.CollapseID {
		t.Errorf("payload %s", n.Payload)
	}

	// A device without a VoIP token gets an incoming-call alert.
	d := testDevice()
	d.VoIPToken = ""
	n = s.wakeNotification(sessions.Wake{Call: c, Device: d, Kind: sessions.WakeAlert, Why: sessions.WhyUndeliverable})
	if n.Kind != KindAlert || n.Token != tAlert || n.Topic() != "com.example.chat" || n.CollapseID != CallUUID("alice@example.com", "c1") ||
		!strings.Contains(string(n.Payload), `"event":"incoming"`) || !strings.Contains(string(n.Payload), "Incoming call from alice@example.com") {
		t.Errorf("incoming alert %+v %s", n, n.Payload)
	}
}

// The end of a call: a missed-call alert replacing the incoming one (same
// collapse id), or a background push; never anything on a VoIP token.
func TestEndNotification(t *testing.T) {
	s := decisionSender(t, nil)
	c := decisionCall()
	for _, state := range []sessions.EndState{sessions.EndMissed, sessions.EndCancelled} {
		n, ok := s.endNotification(sessions.CallEnd{Call: c, Device: testDevice(), State: state})
		if !ok || n.Kind != KindAlert || n.Token != tAlert || n.CollapseID != CallUUID("alice@example.com", "c1") ||
			!strings.Contains(string(n.Payload), `"event":"missed"`) || !strings.Contains(string(n.Payload), "Missed call from alice@example.com") {
			t.Errorf("%s: missed alert %+v %s", state, n, n.Payload)
		}
	}
	for state, event := range map[sessions.EndState]string{
		sessions.EndAnswered: "answered-elsewhere", sessions.EndDeclined: "declined-elsewhere",
		sessions.EndMigrated: "migrated", sessions.EndTieBreak: "cancelled",
	} {
		n, ok := s.endNotification(sessions.CallEnd{Call: c, Device: testDevice(), State: state})
		if !ok || n.Kind != KindBackground || n.Token != tAlert || n.Priority() != 5 ||
			!strings.Contains(string(n.Payload), `"event":"`+event+`"`) || !strings.Contains(string(n.Payload), `"content-available":1`) {
			t.Errorf("%s: background push %+v %s", state, n, n.Payload)
		}
	}
	d := testDevice()
	d.Token = ""
	if n, ok := s.endNotification(sessions.CallEnd{Call: c, Device: d, State: sessions.EndMissed}); ok {
		t.Errorf("a device with only a VoIP token was told of the end: %+v", n)
	}
	if err := s.CallEnded(context.Background(), sessions.CallEnd{Call: c, Device: d, State: sessions.EndMissed}); err != nil {
		t.Errorf("CallEnded for a VoIP-only device: %v, want nil (nothing to send)", err)
	}
}

func TestMessageNotification(t *testing.T) {
	s := decisionSender(t, nil)
	n, ok := s.messageNotification(sessions.Message{Account: "bob@example.com", Device: testDevice(), Body: "New Message!"})
	if !ok || n.Kind != KindAlert || n.Token != tAlert || !strings.Contains(string(n.Payload), `"mutable-content":1`) ||
		!strings.Contains(string(n.Payload), "New Message!") {
		t.Errorf("message alert %+v %s", n, n.Payload)
	}
	d := testDevice()
	d.Token = ""
	if _, ok := s.messageNotification(sessions.Message{Account: "bob@example.com", Device: d}); ok {
		t.Error("a message alert for a device with only a VoIP token")
	}
}

// ringingFeedback answers StillRinging from a table.
type ringingFeedback struct {
	ringing bool
	err     error
}

func (f ringingFeedback) TokenDead(context.Context, sessions.DeadToken) (bool, error) {
	return false, nil
}
func (f ringingFeedback) WakeWanted(context.Context, sessions.WakeKey) (bool, error) {
	return f.ringing, f.err
}
func (f ringingFeedback) Pushed(sessions.PushReport) {}

// A wake's push is retried while sessions says the call rings, and also
// when sessions cannot tell (Redis down): a late push beats a missed call.
func TestStillRingingUnknownRetries(t *testing.T) {
	ctx := context.Background()
	w := sessions.Wake{Call: decisionCall(), Device: testDevice(), Kind: sessions.WakeVoIP}
	for _, tc := range []struct {
		fb   ringingFeedback
		want bool
	}{
		{ringingFeedback{ringing: true}, true},
		{ringingFeedback{ringing: false}, false},
		{ringingFeedback{err: errors.New("redis: connection refused")}, true},
	} {
		n := decisionSender(t, tc.fb).wakeNotification(w)
		if n.Wanted == nil || n.Wanted(ctx) != tc.want {
			t.Errorf("%+v: wanted %v", tc.fb, !tc.want)
		}
	}
}
