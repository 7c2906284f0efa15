package sessions

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"

	"mellium.im/xmpp/jid"
)

// Register adds or updates a device (register-push-apns).
func (s *Service) Register(ctx context.Context, r Registration) (Device, error) {
	acct, err := jid.Parse(r.Account)
	if err != nil || !s.Serves(acct) {
		return Device{}, inputErr(ErrForbidden, "", "accounts of %s cannot register here", acct.Domainpart())
	}
	if err := r.normalize(s.cfg.Apps); err != nil {
		return Device{}, err
	}
	// 128 random bits, as DESIGN.md section 3 asks of the node; the account
	// it names is public to the server that publishes anyway.
	node := make([]byte, 16)
	_, _ = rand.Read(node)
	d := Device{
		ID: r.DeviceID, Resource: r.Resource, VoIPToken: r.VoIPToken, Token: r.Token,
		BundleID: r.BundleID, Environment: r.Environment,
		Node: makeNode(r.Account, node), Secret: randomString(18),
	}
	stored, err := s.store.putDevice(ctx, r.Account, d, s.cfg.MaxDevices, s.cfg.DeviceTTL)
	if errors.Is(err, errFull) {
		return Device{}, inputErr(ErrTooManyDevices, "device-id", "this account already has %d devices: unregister one first", s.cfg.MaxDevices)
	}
	if err != nil {
		return Device{}, err
	}
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
	status, err := s.store.removeDevice(ctx, account, deviceID)
	if err != nil {
		return err
	}
	if status != statusRemoved {
		return inputErr(ErrUnknownDevice, "device-id", "no device %q is registered for this account", deviceID)
	}
	s.m.registrations.WithLabelValues("unregister").Inc()
	return nil
}
