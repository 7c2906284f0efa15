package sessions

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/pushnotify"
)

// ErrForeignDomain means a stanza concerns an account of a domain this
// service does not serve.
var ErrForeignDomain = errors.New("sessions: domain not served")

// App is a configured iOS app as registrations see it.
type App struct {
	BundleID    string
	Environment string // the default environment of its devices
}

// Alerts are the texts of visible pushes; the call ones hold one %s, the
// caller's bare JID.
type Alerts struct {
	Incoming string
	Missed   string
	Message  string
}

// Config tunes a Service. Zero durations take the defaults in brackets.
type Config struct {
	ServedDomains []string
	Apps          []App         // the first one is the default for registrations
	RingTimeout   time.Duration // [45s]
	StaleAfter    time.Duration // [30s]
	Grace         time.Duration // how long an ended call stays for late events [60s]
	PublishHold   time.Duration // how long a publish waits for a propose before it is a message
	WakeOnPublish bool
	MaxDevices    int           // per account [10]
	PresenceTTL   time.Duration // [7 days]
	DeviceTTL     time.Duration // refreshed by each registration [90 days]
	TimerInterval time.Duration // how often due timers are polled [250ms]
	Alerts        Alerts
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&c.RingTimeout, d.RingTimeout)
	defDur(&c.StaleAfter, d.StaleAfter)
	defDur(&c.Grace, d.Grace)
	defDur(&c.PresenceTTL, d.PresenceTTL)
	defDur(&c.DeviceTTL, d.DeviceTTL)
	defDur(&c.TimerInterval, d.TimerInterval)
	if c.PublishHold < 0 {
		c.PublishHold = 0
	}
	if c.MaxDevices <= 0 {
		c.MaxDevices = d.MaxDevices
	}
	if c.Alerts.Incoming == "" {
		c.Alerts.Incoming = d.Alerts.Incoming
	}
	if c.Alerts.Missed == "" {
		c.Alerts.Missed = d.Alerts.Missed
	}
	if c.Alerts.Message == "" {
		c.Alerts.Message = d.Alerts.Message
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Pusher takes pushes without waiting (pushnotify.Sender).
type Pusher interface {
	Push(ctx context.Context, n pushnotify.Notification) error
}

// Service applies jinglepush's call rules (DESIGN.md section 4) to the
// events the component hands it, keeping the state in Redis through a Store
// and handing the pushes they call for to a Pusher.
type Service struct {
	store  *Store
	push   Pusher
	cfg    Config
	t      timing
	served map[string]bool
	log    *slog.Logger
	m      *serviceMetrics
	cache  *deviceCache
}

// NewService returns a Service; call RunTimers to fire ring timeouts and
// held message alerts.
func NewService(store *Store, push Pusher, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Service {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	served := make(map[string]bool, len(cfg.ServedDomains))
	for _, d := range cfg.ServedDomains {
		served[strings.ToLower(d)] = true
	}
	return &Service{
		store:  store,
		push:   push,
		cfg:    cfg,
		t:      timing{ring: cfg.RingTimeout, grace: cfg.Grace, stale: cfg.StaleAfter, hold: cfg.PublishHold, wakeOnPublish: cfg.WakeOnPublish},
		served: served,
		log:    log.With("component", "sessions"),
		m:      newServiceMetrics(reg),
		cache:  newDeviceCache(100_000, 24*time.Hour),
	}
}

// Ready reports whether Redis answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Serves reports whether j's domain is one of the served domains.
func (s *Service) Serves(j jid.JID) bool { return s.served[j.Domainpart()] }

// ---- calls ------------------------------------------------------------------

// Call handles one call signal forwarded by the server.
func (s *Service) Call(ctx context.Context, ev jingle.CallEvent) error {
	switch ev.Action {
	case jingle.ActionPropose:
		return s.propose(ctx, ev)
	case jingle.ActionRetract:
		return s.callerEnds(ctx, ev)
	case jingle.ActionFinish:
		return s.finish(ctx, ev)
	case jingle.ActionProceed, jingle.ActionAccept:
		return s.calleeEnds(ctx, ev, StateAnswered)
	case jingle.ActionReject:
		return s.calleeEnds(ctx, ev, StateDeclined)
	}
	s.m.calls.WithLabelValues(string(ev.Action), "ignored").Inc()
	return nil
}

func (s *Service) propose(ctx context.Context, ev jingle.CallEvent) error {
	if !s.Serves(ev.To) {
		s.m.calls.WithLabelValues("propose", "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.To.Bare())
	}
	p := proposal{
		account:       ev.To.Bare().String(),
		caller:        ev.From.Bare().String(),
		id:            ev.ID,
		from:          ev.From.String(),
		media:         ev.Media,
		delay:         ev.Delay,
		undeliverable: ev.Undeliverable(),
	}
	if p.account == p.caller {
		s.m.calls.WithLabelValues("propose", "self").Inc()
		return nil
	}
	now := s.cfg.Now()
	res, err := s.store.propose(ctx, p, now, s.t)
	if err != nil {
		return s.failOpen(ctx, p, now, err)
	}
	s.cache.put(p.account, res.devices)
	outcome := res.status
	if outcome == "ringing" {
		outcome = "duplicate"
	}
	switch res.status {
	case "stale":
		s.log.Info("stale propose dropped", "call_id", p.id, "caller", p.caller, "account", p.account, "delay", ev.Delay)
	case "ended":
		s.log.Debug("propose for an ended call", "call_id", p.id, "caller", p.caller, "account", p.account, "state", res.state)
	}
	for _, w := range res.wakes {
		s.wakeDevice(ctx, res.call, w)
	}
	// Counted last: once the count moves, the pushes are queued.
	s.m.calls.WithLabelValues("propose", outcome).Inc()
	return nil
}

// failOpen is the propose path when Redis fails: the call still rings on
// every device this process knows of the account, once per process.
func (s *Service) failOpen(ctx context.Context, p proposal, now time.Time, cause error) error {
	devices, ok := s.cache.get(p.account)
	if !ok {
		s.m.calls.WithLabelValues("propose", "redis_error").Inc()
		return cause
	}
	s.m.calls.WithLabelValues("propose", "fail_open").Inc()
	s.log.Error("redis failed: pushing to the devices known to this process", "error", cause, "call_id", p.id, "account", p.account)
	c := callInfo{account: p.account, caller: p.caller, id: p.id, from: p.from, media: p.media, created: now, deadline: now.Add(s.cfg.RingTimeout)}
	for _, d := range devices {
		kind := wakeKind(d)
		if kind == "" || !s.cache.firstWake(p.account+"\n"+c.ref()+"\n"+d.ID, c.deadline) {
			continue
		}
		s.wakeDevice(ctx, c, wake{device: d, kind: kind, why: "fail_open"})
	}
	return nil
}

// wakeKind is how a call wakes d; lua/device.lua's wake_kind is its twin
// inside the scripts.
func wakeKind(d Device) string {
	switch {
	case d.VoIPToken != "":
		return wakeVoIP
	case d.Token != "":
		return wakeAlert
	}
	return ""
}

func (s *Service) callerEnds(ctx context.Context, ev jingle.CallEvent) error {
	if !s.Serves(ev.To) {
		s.m.calls.WithLabelValues(string(ev.Action), "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.To.Bare())
	}
	_, err := s.end(ctx, string(ev.Action), ev.To.Bare().String(), callRef(ev.From.Bare().String(), ev.ID), StateCancelled, "")
	return err
}

// finish comes from either side: from the caller it ends a ringing call as
// cancelled; from the callee as answered (or declined, by its reason).
func (s *Service) finish(ctx context.Context, ev jingle.CallEvent) error {
	if s.Serves(ev.To) && ev.To.Bare().String() != ev.From.Bare().String() {
		status, err := s.end(ctx, "finish", ev.To.Bare().String(), callRef(ev.From.Bare().String(), ev.ID), StateCancelled, "")
		if err != nil || status != "unknown" {
			return err
		}
	}
	state := StateAnswered
	switch ev.Reason {
	case "decline", "busy":
		state = StateDeclined
	}
	return s.calleeEnds(ctx, ev, state)
}

// calleeEnds handles a signal from one of the callee's own resources: the
// call was answered or declined there, so the other woken devices stop
// ringing.
func (s *Service) calleeEnds(ctx context.Context, ev jingle.CallEvent, state string) error {
	action := string(ev.Action)
	if !s.Serves(ev.From) {
		s.m.calls.WithLabelValues(action, "foreign").Inc()
		return fmt.Errorf("%w: callee %s", ErrForeignDomain, ev.From.Bare())
	}
	account := ev.From.Bare().String()
	ref := callRef(ev.To.Bare().String(), ev.ID)
	if ev.To.Bare().String() == account || ev.To.Equal(jid.JID{}) {
		// Sent to the callee's own bare JID (XEP-0353 accept): the caller is
		// not named, the id finds the call.
		var err error
		if ref, err = s.store.refByID(ctx, account, ev.ID, s.cfg.Now()); err != nil {
			return err
		}
		if ref == "" {
			s.m.calls.WithLabelValues(action, "unknown").Inc()
			return nil
		}
	}
	_, err := s.end(ctx, action, account, ref, state, ev.From.Resourcepart())
	return err
}

// end moves a call to state and tells its woken devices.
func (s *Service) end(ctx context.Context, action, account, ref, state, leaveOut string) (string, error) {
	res, err := s.store.end(ctx, account, ref, state, leaveOut, false, s.cfg.Now())
	if err != nil {
		s.m.calls.WithLabelValues(action, "redis_error").Inc()
		return "", err
	}
	outcome := res.status
	if outcome == "ended-now" {
		outcome = state
	}
	if res.status == "ended-now" {
		s.log.Info("call ended", "call_id", res.call.id, "caller", res.call.caller, "account", account, "state", state, "woken", len(res.woken))
		s.tellEnd(ctx, res.call, res.woken, state)
	}
	s.m.calls.WithLabelValues(action, outcome).Inc()
	return res.status, nil
}

// tellEnd sends each woken device the push for the call's end: a missed-call
// alert, or a background push when another device took the call.
func (s *Service) tellEnd(ctx context.Context, c callInfo, woken []wake, state string) {
	for _, w := range woken {
		d := w.device
		if d.Token == "" {
			continue // a VoIP token must never carry anything but a new call
		}
		pc := s.pushCall(c)
		n := pushnotify.Notification{
			Token: d.Token, BundleID: d.BundleID, Environment: d.Environment,
			Account: c.account, DeviceID: d.ID, CallID: c.id,
		}
		switch state {
		case StateMissed, StateCancelled:
			n.Kind = pushnotify.KindAlert
			n.CollapseID = pc.UUID // replaces an "Incoming call" alert
			n.Expiration = s.cfg.Now().Add(24 * time.Hour)
			n.Payload = pushnotify.CallAlertPayload(c.account, pc, pushnotify.EventMissed, fmt.Sprintf(s.cfg.Alerts.Missed, c.caller))
		case StateAnswered, StateDeclined:
			ev := pushnotify.EventAnsweredElsewhere
			if state == StateDeclined {
				ev = pushnotify.EventDeclinedElsewhere
			}
			n.Kind = pushnotify.KindBackground
			n.Expiration = c.deadline
			n.Deadline = c.deadline
			n.Payload = pushnotify.BackgroundPayload(c.account, pc, ev)
		default:
			continue
		}
		s.send(ctx, n)
	}
}

// wakeDevice sends the push for a ringing call: PushKit when the device has
// a VoIP token, an "Incoming call" alert otherwise.
func (s *Service) wakeDevice(ctx context.Context, c callInfo, w wake) {
	d := w.device
	pc := s.pushCall(c)
	n := pushnotify.Notification{
		BundleID: d.BundleID, Environment: d.Environment,
		CollapseID: pc.UUID, Expiration: c.deadline, Deadline: c.deadline,
		Account: c.account, DeviceID: d.ID, CallID: c.id,
		Wanted: s.stillRinging(c.account, c.caller, c.id),
	}
	if w.kind == wakeVoIP {
		n.Kind, n.Token = pushnotify.KindVoIP, d.VoIPToken
		n.Payload = pushnotify.VoIPPayload(c.account, pc)
	} else {
		n.Kind, n.Token = pushnotify.KindAlert, d.Token
		n.Payload = pushnotify.CallAlertPayload(c.account, pc, pushnotify.EventIncoming, fmt.Sprintf(s.cfg.Alerts.Incoming, c.caller))
	}
	s.m.wakes.WithLabelValues(w.kind, w.why).Inc()
	s.log.Info("waking device", "call_id", c.id, "caller", c.caller, "account", c.account, "device", d.ID, "kind", w.kind, "why", w.why)
	if err := s.send(ctx, n); err != nil {
		// Nothing will carry this call to the device: let a later copy of the
		// propose try again.
		if uerr := s.store.unwake(ctx, c.account, c.ref(), d.ID); uerr != nil {
			s.log.Error("could not release a device for a later wake", "error", uerr)
		}
	}
}

// stillRinging is a call push's Notification.Wanted: a retry goes out only
// while the call rings. When Redis cannot tell, it does (the ring deadline
// still bounds it): a rare late push beats a missed call. It is made for
// every call push and asked only on retries, so the ref is built then.
func (s *Service) stillRinging(account, caller, id string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		ref := callRef(caller, id)
		ok, err := s.store.ringing(ctx, account, ref)
		if err != nil {
			s.log.Warn("could not tell whether a call still rings; retrying its push", "account", account, "call", ref, "error", err)
			return true
		}
		return ok
	}
}

func (s *Service) pushCall(c callInfo) pushnotify.Call {
	return pushnotify.Call{
		ID: c.id, UUID: jingle.CallUUID(c.caller, c.id), From: c.from, Caller: c.caller,
		Media: c.media, SentAt: c.created, ExpiresAt: c.deadline,
	}
}

func (s *Service) send(ctx context.Context, n pushnotify.Notification) error {
	if err := s.push.Push(ctx, n); err != nil {
		s.m.pushErrors.WithLabelValues(string(n.Kind)).Inc()
		s.log.Error("push not queued", "error", err, "kind", n.Kind, "call_id", n.CallID, "account", n.Account, "device", n.DeviceID)
		return err
	}
	return nil
}

// ---- timers -----------------------------------------------------------------

// RunTimers fires due ring timeouts and held message alerts until ctx ends.
// Every process runs it; the scripts make each timer act once.
func (s *Service) RunTimers(ctx context.Context) {
	t := time.NewTicker(s.cfg.TimerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.FireTimers(ctx)
		}
	}
}

// FireTimers acts on the timers due now.
func (s *Service) FireTimers(ctx context.Context) {
	now := s.cfg.Now()
	members, err := s.store.dueTimers(ctx, now, 512)
	if err != nil {
		s.log.Warn("timers", "error", err)
		return
	}
	for _, member := range members {
		if s.fireTimer(ctx, member, now) {
			if err := s.store.doneTimer(ctx, member); err != nil {
				s.log.Warn("timer done", "error", err)
			}
		}
	}
}

// fireTimer reports whether the timer is done with.
func (s *Service) fireTimer(ctx context.Context, member string, now time.Time) bool {
	kind, account, rest, ok := parseTimer(member)
	if !ok {
		return true
	}
	switch kind {
	case timerCall:
		res, err := s.store.end(ctx, account, rest, StateMissed, "", true, now)
		if err != nil {
			s.log.Warn("ring timeout", "error", err)
			return false
		}
		if res.status == "early" {
			return false
		}
		if res.status == "ended-now" {
			s.log.Info("call missed", "call_id", res.call.id, "caller", res.call.caller, "account", account, "woken", len(res.woken))
			s.tellEnd(ctx, res.call, res.woken, StateMissed)
			s.m.calls.WithLabelValues("timeout", StateMissed).Inc()
		}
	case timerMessage:
		status, d, pending, err := s.store.messageDue(ctx, account, rest)
		if err != nil {
			s.log.Warn("message alert", "error", err)
			return false
		}
		s.m.messages.WithLabelValues(status).Inc()
		if status == "message" {
			var m pendingMessage
			_ = json.Unmarshal([]byte(pending), &m)
			s.sendMessage(ctx, account, d, m)
		}
	}
	return true
}

// ---- presence ---------------------------------------------------------------

// Presence records an available or unavailable presence of a user's
// resource (privileged or directed); other types are ignored.
func (s *Service) Presence(ctx context.Context, p jingle.Presence) error {
	if !s.Serves(p.From) {
		return fmt.Errorf("%w: %s", ErrForeignDomain, p.From.Domain())
	}
	resource := p.From.Resourcepart()
	if resource == "" {
		return nil
	}
	var available bool
	switch p.Type {
	case "":
		available = true
	case "unavailable":
	default:
		return nil
	}
	return s.store.setPresence(ctx, p.From.Bare().String(), resource, available, s.cfg.Now(), s.cfg.PresenceTTL)
}

// ---- XEP-0357 publishes -------------------------------------------------------

// pendingMessage is a message alert held for calls.publish_hold.
type pendingMessage struct {
	At     int64  `json:"at"`
	Sender string `json:"sender,omitempty"`
	Body   string `json:"body,omitempty"`
	// LastCall is the account's lastcall key when the publish was recorded
	// ("" when absent): a call started after the publish changes it, and
	// the publish then belonged to that call (message_due.lua). Comparing
	// Redis states, not clocks: the propose's time is taken on another
	// worker and may fall before the publish's.
	LastCall string `json:"lastcall"`
}

// Publish handles a XEP-0357 publish from server: it must name a registered
// node of one of that server's users and carry the node's secret. It wakes
// the device for a ringing call, or becomes a message alert. Errors: an
// *InputError wrapping ErrUnknownNode or ErrForbidden, or a Redis error.
func (s *Service) Publish(ctx context.Context, server jid.JID, pub jingle.Publish) error {
	account, d, err := s.store.deviceByNode(ctx, pub.Node)
	if errors.Is(err, ErrUnknownNode) {
		s.m.publishes.WithLabelValues("unknown_node").Inc()
		return inputErr(ErrUnknownNode, "node", "no push registration has node %q", pub.Node)
	}
	if err != nil {
		return err
	}
	acct, _ := jid.Parse(account)
	if server.Localpart() != "" || server.Domainpart() != acct.Domainpart() {
		s.m.publishes.WithLabelValues("forbidden").Inc()
		return inputErr(ErrForbidden, "", "%s may not publish for %s", server, account)
	}
	if subtle.ConstantTimeCompare([]byte(pub.Options.Get("secret")), []byte(d.Secret)) != 1 {
		s.m.publishes.WithLabelValues("bad_secret").Inc()
		return inputErr(ErrForbidden, "secret", "wrong secret for node %q", pub.Node)
	}

	now := s.cfg.Now()
	// A publish that Prosody 13 marks as a call (Tigase's encrypted type='voip')
	// counts as condition 3 even where wake_on_publish is off.
	wakeOK := s.cfg.WakeOnPublish || pub.VoIP
	// Only a publish with a body, a sender or an encrypted payload is about a
	// message. ejabberd publishes an empty <notification/> for every stanza
	// that reaches a hibernated session (presences, receipts, chat states)
	// and for the unacknowledged stanzas of a session going into
	// hibernation; Prosody one without a body for a chat state. Such a
	// publish still counts for a call (condition 3), but is never held as
	// a message and never becomes an alert.
	message := pub.Summary.Body != "" || pub.Summary.Sender != "" || pub.Encrypted
	t := s.t
	if !message {
		t.hold = 0
	}
	res, err := s.store.publish(ctx, account, d, now, t, wakeOK, pendingMessage{At: ms(now), Sender: pub.Summary.Sender, Body: pub.Summary.Body})
	if err != nil {
		return err
	}
	status := res.status
	if status == "message" && !message {
		status = "empty"
	}
	s.m.publishes.WithLabelValues(status).Inc()
	switch status {
	case "gone":
		return inputErr(ErrUnknownNode, "node", "no push registration has node %q", pub.Node)
	case "call":
		for _, w := range res.wakes {
			s.wakeDevice(ctx, w.call, wake{device: d, kind: w.kind, why: "publish"})
		}
	case "hold":
		if res.holdStarted {
			if err := s.store.addTimer(ctx, timerMember(timerMessage, account, d.ID), now.Add(s.cfg.PublishHold)); err != nil {
				return err
			}
		}
	case "message":
		s.sendMessage(ctx, account, res.device, pendingMessage{Sender: pub.Summary.Sender, Body: pub.Summary.Body})
	}
	return nil
}

func (s *Service) sendMessage(ctx context.Context, account string, d Device, m pendingMessage) {
	if d.Token == "" {
		return // a VoIP token cannot carry a message
	}
	s.send(ctx, pushnotify.Notification{
		Kind: pushnotify.KindAlert, Token: d.Token, BundleID: d.BundleID, Environment: d.Environment,
		Expiration: s.cfg.Now().Add(24 * time.Hour),
		Payload:    pushnotify.MessagePayload(account, m.Sender, m.Body, s.cfg.Alerts.Message),
		Account:    account, DeviceID: d.ID,
	})
}

// ---- registrations ------------------------------------------------------------

// Register adds or updates a device (register-push-apns).
func (s *Service) Register(ctx context.Context, r Registration) (Device, error) {
	acct, err := jid.Parse(r.Account)
	if err != nil || !s.Serves(acct) {
		return Device{}, inputErr(ErrForbidden, "", "accounts of %s cannot register here", acct.Domainpart())
	}
	if err := r.normalize(s.cfg.Apps); err != nil {
		return Device{}, err
	}
	d := Device{
		ID: r.DeviceID, Resource: r.Resource, VoIPToken: r.VoIPToken, Token: r.Token,
		BundleID: r.BundleID, Environment: r.Environment,
		Node: randomString(16), Secret: randomString(24),
		Registered: s.cfg.Now().UTC().Format(time.RFC3339),
	}
	stored, err := s.store.putDevice(ctx, r.Account, d, s.cfg.MaxDevices, s.cfg.DeviceTTL)
	if errors.Is(err, errFull) {
		return Device{}, inputErr(ErrTooManyDevices, "device-id", "this account already has %d devices: unregister one first", s.cfg.MaxDevices)
	}
	if err != nil {
		return Device{}, err
	}
	s.cache.update(r.Account, stored.ID, &stored)
	s.m.registrations.WithLabelValues("register").Inc()
	return stored, nil
}

// Unregister removes a device (unregister-push-apns).
func (s *Service) Unregister(ctx context.Context, account, deviceID string) error {
	acct, err := jid.Parse(account)
	if err != nil || !s.Serves(acct) {
		return inputErr(ErrForbidden, "", "accounts of %s cannot register here", acct.Domainpart())
	}
	deviceID = strings.TrimSpace(deviceID)
	if deviceID == "" {
		return inputErr(ErrInvalid, "device-id", "device-id is required")
	}
	status, err := s.store.removeDevice(ctx, account, deviceID, "", time.Time{})
	if err != nil {
		return err
	}
	if status != "removed" {
		return inputErr(ErrUnknownDevice, "device-id", "no device %q is registered for this account", deviceID)
	}
	s.cache.update(account, deviceID, nil)
	s.m.registrations.WithLabelValues("unregister").Inc()
	return nil
}

// RemoveToken drops a token APNs called dead, and the device with it when
// it has no token left (pushnotify.TokenRemover). A device that registered
// again after t.InvalidSince keeps its token: Apple counts a token
// registered after that time as valid again.
func (s *Service) RemoveToken(ctx context.Context, t pushnotify.DeadToken) (bool, error) {
	status, err := s.store.removeDevice(ctx, t.Account, t.DeviceID, t.Token, t.InvalidSince)
	if err != nil {
		return false, err
	}
	if status != "removed" && status != "updated" {
		return false, nil
	}
	s.cache.update(t.Account, t.DeviceID, nil)
	return true, nil
}

// ---- fail-open cache ----------------------------------------------------------

// deviceCache remembers the devices of accounts seen lately, so a call
// still rings when Redis fails (DESIGN.md section 6: fail open).
type deviceCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	m     map[string]cachedDevices
	woken map[string]time.Time // fail-open wakes, to push once per process
}

type cachedDevices struct {
	devices map[string]string // id → device JSON, decoded only when needed
	at      time.Time
}

func newDeviceCache(max int, ttl time.Duration) *deviceCache {
	return &deviceCache{max: max, ttl: ttl, m: make(map[string]cachedDevices), woken: make(map[string]time.Time)}
}

func (c *deviceCache) put(account string, devices map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Forget an arbitrary half: map order is random enough for a cache
		// that only matters while Redis is down.
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.m[account] = cachedDevices{devices: devices, at: time.Now()}
}

// update changes one device of a cached account (nil d removes it). Only
// complete lists are cached, so an account not cached stays so.
func (c *deviceCache) update(account, deviceID string, d *Device) {
	c.mu.Lock()
	e, ok := c.m[account]
	c.mu.Unlock()
	if !ok {
		return
	}
	devices := make(map[string]string, len(e.devices)+1)
	for id, raw := range e.devices {
		if id != deviceID {
			devices[id] = raw
		}
	}
	if d != nil {
		raw, err := d.marshal()
		if err != nil {
			return
		}
		devices[deviceID] = raw
	}
	c.put(account, devices)
}

func (c *deviceCache) get(account string) ([]Device, bool) {
	c.mu.Lock()
	e, ok := c.m[account]
	c.mu.Unlock()
	if !ok || time.Since(e.at) > c.ttl {
		return nil, false
	}
	devices := make([]Device, 0, len(e.devices))
	for _, raw := range e.devices {
		if d, err := parseDevice(raw); err == nil {
			devices = append(devices, d)
		}
	}
	return devices, true
}

// firstWake reports whether key (account, call, device) was not woken by
// this process yet, and remembers it until expires.
func (c *deviceCache) firstWake(key string, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for k, exp := range c.woken {
		if now.After(exp) {
			delete(c.woken, k)
		}
	}
	if _, seen := c.woken[key]; seen {
		return false
	}
	c.woken[key] = expires
	return true
}
