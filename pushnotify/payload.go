package pushnotify

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Size limits of APNs bodies, in bytes.
const (
	MaxVoIPPayload = 5120
	MaxPayload     = 4096
)

// Event names the reason of a call push in its body's "event" field.
type Event string

// The events of DESIGN.md section 4. A VoIP push carries no event: it always
// means "a new call is ringing".
const (
	EventIncoming          Event = "incoming"
	EventMissed            Event = "missed"
	EventAnsweredElsewhere Event = "answered-elsewhere"
	EventDeclinedElsewhere Event = "declined-elsewhere"
	// The call moved to another session (XEP-0353 finish with
	// <migrated/>): end this one quietly, a new call may ring.
	EventMigrated Event = "migrated"
	// Crossing calls: this one gave way to the other (XEP-0353
	// tie-break). End it quietly; nobody missed a call.
	EventCancelled Event = "cancelled"
)

// Call is what a push tells the app of a call.
type Call struct {
	ID        string    // the JMI id (= Jingle sid)
	UUID      string    // the CallKit UUID (CallUUID)
	From      string    // the caller's full JID
	Caller    string    // the caller's bare JID
	Media     []string  // "audio", "video"
	SentAt    time.Time // when the call was first seen
	ExpiresAt time.Time // the ring deadline
}

type callJSON struct {
	ID        string   `json:"id"`
	UUID      string   `json:"uuid"`
	From      string   `json:"from"`
	Caller    string   `json:"caller"`
	Media     []string `json:"media"`
	SentAt    int64    `json:"sent_at"`
	ExpiresAt int64    `json:"expires_at"`
}

type alertJSON struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body"`
}

type apsJSON struct {
	Alert            *alertJSON `json:"alert,omitempty"`
	Sound            string     `json:"sound,omitempty"`
	MutableContent   int        `json:"mutable-content,omitempty"`
	ContentAvailable int        `json:"content-available,omitempty"`
	ThreadID         string     `json:"thread-id,omitempty"`
}

type bodyJSON struct {
	APS     apsJSON      `json:"aps"`
	Account string       `json:"account"`
	Event   Event        `json:"event,omitempty"`
	Call    *callJSON    `json:"call,omitempty"`
	Message *messageJSON `json:"message,omitempty"`
}

type messageJSON struct {
	Sender string `json:"sender,omitempty"`
	Body   string `json:"body,omitempty"`
}

func (c Call) json() *callJSON {
	media := c.Media
	if media == nil {
		media = []string{}
	}
	return &callJSON{
		ID: c.ID, UUID: c.UUID, From: c.From, Caller: c.Caller, Media: media,
		SentAt: c.SentAt.UnixMilli(), ExpiresAt: c.ExpiresAt.UnixMilli(),
	}
}

// VoIPPayload is the body of a PushKit push for a ringing call. The app
// must report every one of them to CallKit.
func VoIPPayload(account string, c Call) []byte {
	return build(bodyJSON{Account: account, Call: c.json()}, MaxVoIPPayload)
}

// CallAlertPayload is the body of a visible push about a call: "incoming"
// for a device without a VoIP token, "missed" when the call ended unanswered.
func CallAlertPayload(account string, c Call, event Event, text string) []byte {
	return build(bodyJSON{
		APS:     apsJSON{Alert: &alertJSON{Body: text}, Sound: "default", ThreadID: c.Caller},
		Account: account, Event: event, Call: c.json(),
	}, MaxPayload)
}

// BackgroundPayload is the body of a silent push that tells a woken app a
// call was answered or declined on another device.
func BackgroundPayload(account string, c Call, event Event) []byte {
	return build(bodyJSON{
		APS:     apsJSON{ContentAvailable: 1},
		Account: account, Event: event, Call: c.json(),
	}, MaxPayload)
}

// MessagePayload is the body of an alert for a XEP-0357 publish that no call
// claimed. sender and body are the server's summary fields, empty when it
// sent none; text is the alert shown when body is empty. mutable-content
// lets the app's notification service extension fetch the real message.
func MessagePayload(account, sender, body, text string) []byte {
	shown := body
	if shown == "" {
		shown = text
	}
	var msg *messageJSON
	if sender != "" || body != "" {
		msg = &messageJSON{Sender: sender, Body: body}
	}
	a := &alertJSON{Body: shown}
	if sender != "" {
		a.Title = sender
	}
	return build(bodyJSON{
		APS:     apsJSON{Alert: a, Sound: "default", MutableContent: 1},
		Account: account, Message: msg,
	}, MaxPayload)
}

// build encodes b, cutting its longest free-text fields until it fits in
// limit bytes: names and texts shrink, ids and times never change. Only a
// body whose ids alone are too large stays over the limit; Push refuses it.
func build(b bodyJSON, limit int) []byte {
	raw := encode(b)
	for range 64 {
		over := len(raw) - limit
		if over <= 0 {
			return raw
		}
		p := longestField(&b)
		if p == nil || len(*p) <= len("…") {
			return raw
		}
		*p = cut(*p, max(len(*p)-over-len("…"), len(*p)/2))
		raw = encode(b)
	}
	return raw
}

// encode is json.Marshal without escaping <, > and &, which would only
// make texts longer.
func encode(b bodyJSON) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		// Only strings, ints and slices of strings: cannot fail.
		panic("pushnotify: encode payload: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// longestField returns the longest field that may be shortened.
func longestField(b *bodyJSON) *string {
	var fields []*string
	if b.APS.Alert != nil {
		fields = append(fields, &b.APS.Alert.Body, &b.APS.Alert.Title)
	}
	if b.Message != nil {
		fields = append(fields, &b.Message.Body, &b.Message.Sender)
	}
	fields = append(fields, &b.APS.ThreadID)
	if b.Call != nil {
		fields = append(fields, &b.Call.From, &b.Call.Caller)
	}
	fields = append(fields, &b.Account)
	var best *string
	for _, f := range fields {
		if best == nil || len(*f) > len(*best) {
			best = f
		}
	}
	return best
}

// cut shortens s to at most n bytes on a rune boundary and marks the cut.
func cut(s string, n int) string {
	if n <= 0 {
		return "…"
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
