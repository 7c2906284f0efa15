package sessions

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Device is one registered app install of an account.
type Device struct {
	ID          string `json:"id"`
	Resource    string `json:"resource,omitempty"`   // the XMPP resource it registered from
	VoIPToken   string `json:"voip_token,omitempty"` // PushKit token, lower-case hex
	Token       string `json:"token,omitempty"`      // regular APNs token, lower-case hex
	BundleID    string `json:"bundle_id"`
	Environment string `json:"environment"`          // production | sandbox
	Node        string `json:"node"`                 // XEP-0357 node the app enables on its server
	Secret      string `json:"secret"`               // XEP-0357 publish-options secret
	Registered  string `json:"registered,omitempty"` // RFC 3339; a string, as Lua's cjson would round a number
}

func (d Device) marshal() (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("sessions: encode device: %w", err)
	}
	return string(b), nil
}

func parseDevice(raw string) (Device, error) {
	var d Device
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return Device{}, fmt.Errorf("sessions: decode device: %w", err)
	}
	if d.ID == "" {
		return Device{}, errors.New("sessions: decode device: no id")
	}
	return d, nil
}

// Errors of the registration commands and publishes. The component turns
// them into stanza errors; an *InputError says which field was wrong.
var (
	ErrInvalid        = errors.New("sessions: invalid request")   // bad-request
	ErrUnknownApp     = errors.New("sessions: unknown bundle-id") // item-not-found
	ErrUnknownDevice  = errors.New("sessions: unknown device")    // item-not-found
	ErrUnknownNode    = errors.New("sessions: unknown node")      // item-not-found
	ErrForbidden      = errors.New("sessions: forbidden")         // forbidden
	ErrTooManyDevices = errors.New("sessions: too many devices")  // resource-constraint
)

// InputError is a rejected request with a message for its sender that names
// the field at fault.
type InputError struct {
	Kind  error  // one of the Err* values above
	Field string // the form field, "" when none
	Text  string // for the user, e.g. "voip-token must be 64 to 200 hex digits"
}

func (e *InputError) Error() string { return "sessions: " + e.Text }
func (e *InputError) Unwrap() error { return e.Kind }

func inputErr(kind error, field, format string, args ...any) error {
	return &InputError{Kind: kind, Field: field, Text: fmt.Sprintf(format, args...)}
}

// Registration is a register-push-apns request (DESIGN.md section 3).
type Registration struct {
	Account     string // the sender's bare JID
	Resource    string // the sender's resource: the device's current resource
	DeviceID    string
	VoIPToken   string
	Token       string
	BundleID    string
	Environment string
}

// normalize checks a registration and fills its defaults. It reports the
// first problem of each field, naming the field.
func (r *Registration) normalize(apps []App) error {
	var errs []error
	r.DeviceID = strings.TrimSpace(r.DeviceID)
	switch {
	case r.DeviceID == "":
		errs = append(errs, inputErr(ErrInvalid, "device-id", "device-id is required"))
	case len(r.DeviceID) > 128 || strings.ContainsFunc(r.DeviceID, badIDRune):
		errs = append(errs, inputErr(ErrInvalid, "device-id", "device-id must be 1 to 128 printable characters without spaces"))
	}
	var err error
	if r.VoIPToken, err = normalizeToken("voip-token", r.VoIPToken); err != nil {
		errs = append(errs, err)
	}
	if r.Token, err = normalizeToken("token", r.Token); err != nil {
		errs = append(errs, err)
	}
	if r.VoIPToken == "" && r.Token == "" && err == nil && len(errs) == 0 {
		errs = append(errs, inputErr(ErrInvalid, "voip-token", "one of voip-token and token is required"))
	}
	switch r.Environment = strings.ToLower(strings.TrimSpace(r.Environment)); r.Environment {
	case "", "production", "sandbox":
	default:
		errs = append(errs, inputErr(ErrInvalid, "environment", "environment must be production or sandbox"))
	}
	if len(errs) > 0 {
		return errs[0]
	}

	r.BundleID = strings.TrimSpace(r.BundleID)
	var app *App
	if r.BundleID == "" && len(apps) > 0 {
		app = &apps[0]
	}
	for i := range apps {
		if apps[i].BundleID == r.BundleID {
			app = &apps[i]
		}
	}
	if app == nil {
		return inputErr(ErrUnknownApp, "bundle-id", "bundle-id %q is not an app of this service", r.BundleID)
	}
	r.BundleID = app.BundleID
	if r.Environment == "" {
		r.Environment = app.Environment
	}
	return nil
}

func badIDRune(r rune) bool { return r <= ' ' || r == 0x7f }

// normalizeToken checks a hex device token: either case, even length, 64
// to 200 digits; it returns it in lower case.
func normalizeToken(field, tok string) (string, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", nil
	}
	if len(tok) < 64 || len(tok) > 200 || len(tok)%2 != 0 || strings.ContainsFunc(tok, notHex) {
		return "", inputErr(ErrInvalid, field, "%s must be 64 to 200 hex digits, an even number of them", field)
	}
	return strings.ToLower(tok), nil
}

func notHex(r rune) bool {
	return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
}

// randomString returns n random bytes, URL-safe base64 encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux (Go ≥ 1.24 panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
