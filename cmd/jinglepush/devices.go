package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jinglepush/jinglepush/pushnotify"
	"github.com/jinglepush/jinglepush/sessions"
)

// devices: an account's registered devices as Redis holds them, with the
// presence of each device's resource; --remove drops one.

// deviceView is one device as the command shows it: token prefixes only,
// never the XEP-0357 secret.
type deviceView struct {
	ID          string    `json:"id"`
	VoIPToken   string    `json:"voip_token,omitempty"` // a prefix
	Token       string    `json:"token,omitempty"`      // a prefix
	BundleID    string    `json:"bundle_id"`
	Environment string    `json:"environment"`
	Registered  time.Time `json:"registered,omitzero"`
	Expires     time.Time `json:"expires,omitzero"` // unless it registers again
	Resource    string    `json:"resource,omitempty"`
	// Available is when the resource last said it is available; zero
	// when it is not (or the server never said).
	Available time.Time `json:"available_since,omitzero"`
}

func devicesCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := newCommand("devices", "ACCOUNT [--remove DEVICE]", stderr)
	remove := c.fs.String("remove", "", "remove this device (by device id) of the account")
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return c.exit(err)
	}
	return c.exit(devices(ctx, c, environ, pos[0], *remove, *asJSON, stdout))
}

func devices(ctx context.Context, c *command, environ []string, arg, remove string, asJSON bool, stdout io.Writer) error {
	account, err := bareJID(arg)
	if err != nil {
		return err
	}
	cfg, err := c.config(environ)
	if err != nil {
		return err
	}
	store, done, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()

	if remove != "" {
		removed, err := store.RemoveDevice(ctx, account, remove)
		if err != nil {
			return err
		}
		if !removed {
			return fmt.Errorf("%s has no device %q", account, remove)
		}
		fmt.Fprintf(stdout, "removed device %s of %s\n", remove, account)
		return nil
	}

	ds, err := store.Devices(ctx, account)
	if err != nil {
		return err
	}
	presence, err := store.Presence(ctx, account)
	if err != nil {
		return err
	}
	views := make([]deviceView, 0, len(ds))
	ttl := sessions.DefaultConfig().DeviceTTL
	for _, d := range ds {
		v := deviceView{
			ID: d.ID, BundleID: d.BundleID, Environment: d.Environment, Resource: d.Resource,
			Available: presence[d.Resource],
		}
		if d.VoIPToken != "" {
			v.VoIPToken = pushnotify.TokenPrefix(d.VoIPToken)
		}
		if d.Token != "" {
			v.Token = pushnotify.TokenPrefix(d.Token)
		}
		if reg, err := time.Parse(time.RFC3339, d.Registered); err == nil {
			v.Registered, v.Expires = reg, reg.Add(ttl)
		}
		views = append(views, v)
	}
	if asJSON {
		return printJSON(stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintf(stdout, "%s has no devices\n", account)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %d device(s)\n", account, len(views))
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE\tVOIP TOKEN\tTOKEN\tAPP\tENVIRONMENT\tREGISTERED\tEXPIRES\tRESOURCE\tPRESENCE")
	for _, v := range views {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, orDash(v.VoIPToken), orDash(v.Token), v.BundleID, v.Environment,
			stamp(v.Registered), stamp(v.Expires), orDash(v.Resource), presenceText(v))
	}
	return w.Flush()
}

func presenceText(v deviceView) string {
	switch {
	case v.Resource == "":
		return "unknown (no resource)"
	case v.Available.IsZero():
		return "unavailable (or never said)"
	}
	return "available since " + stamp(v.Available)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
