package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/jinglepush/jinglepush/pushnotify"
)

// push-test: one push with the configured credentials to a token given on
// the command line, for a made-up call, built as a real call's push is.
// It prints the request and APNs's answer. Exit code 0 only when APNs
// answered 200; 3 in dry runs (the request is printed, not sent).
const dryRunExit = 3

const pushTestArgs = "TOKEN"

func pushTestCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := newCommand("push-test", pushTestArgs, stderr)
	kind := c.fs.String("kind", "voip", "the push: voip (PushKit, needs the app's VoIP token), alert (an incoming-call alert) or background (answered elsewhere); alert and background need the regular token")
	bundle := c.fs.String("bundle-id", "", "the app (default: the first [[apns.apps]])")
	sandbox := c.fs.Bool("sandbox", false, "send to the sandbox environment (development builds)")
	production := c.fs.Bool("production", false, "send to the production environment (TestFlight and App Store builds)")
	caller := c.fs.String("caller", "", "the caller the push names (default: push-test@<xmpp.domain>)")
	account := c.fs.String("account", "", "the account the push names (default: push-test@<the first served domain>)")
	tokenFlag := c.fs.String("token", "", "the device token, hex (or give it as the argument)")
	pos, err := c.parse(args, 0, 1)
	if err != nil {
		return c.exit(err)
	}
	tok := *tokenFlag
	if len(pos) == 1 {
		tok = pos[0]
	}
	switch {
	case tok == "" || (len(pos) == 1 && *tokenFlag != ""):
		fmt.Fprintln(stderr, "jinglepush push-test: give one device token")
		c.fs.Usage()
		return 2
	case *sandbox && *production:
		fmt.Fprintln(stderr, "jinglepush push-test: --sandbox or --production, not both")
		return 2
	case !validKind(*kind):
		fmt.Fprintf(stderr, "jinglepush push-test: --kind %q is not voip, alert or background\n", *kind)
		return 2
	}
	cfg, err := c.config(environ)
	if err != nil {
		return c.exit(err)
	}
	p := pushnotify.TestPush{
		Kind: pushnotify.Kind(*kind), Token: strings.ToLower(strings.TrimSpace(tok)), BundleID: *bundle,
		Account: *account, Caller: *caller, Ring: cfg.Calls.RingTimeout,
	}
	if *sandbox {
		p.Environment = pushnotify.Sandbox
	}
	if *production {
		p.Environment = pushnotify.Production
	}
	if p.Caller == "" {
		p.Caller = "push-test@" + cfg.XMPP.Domain
	}
	if p.Account == "" {
		p.Account = "push-test@" + cfg.XMPP.ServedDomains[0]
	}
	code, err := pushTest(ctx, cfg, p, stdout, stderr)
	if err != nil {
		return c.exit(err)
	}
	return code
}

func validKind(k string) bool {
	switch pushnotify.Kind(k) {
	case pushnotify.KindVoIP, pushnotify.KindAlert, pushnotify.KindBackground:
		return true
	}
	return false
}

func pushTest(ctx context.Context, cfg Config, p pushnotify.TestPush, stdout, stderr io.Writer) (int, error) {
	apps, err := loadApps(cfg)
	if err != nil {
		return 1, err
	}
	roots, err := certPool(cfg.APNs.CAFile)
	if err != nil {
		return 1, err
	}
	// Warnings only: an expiring certificate is worth seeing here.
	log := newLogger("text", slog.LevelWarn, stderr)
	sender, err := pushnotify.New(pushnotify.Config{
		Apps: apps, Endpoint: cfg.APNs.Endpoint, RootCAs: roots, DryRun: cfg.APNs.DryRun,
		Workers: 1, QueueSize: 1, MaxInflight: 1, Timeout: cfg.APNs.Timeout,
	}, nil, log, nil)
	if err != nil {
		return 1, err
	}
	defer sender.Close(context.Background())

	res, err := sender.SendTest(ctx, p)
	if err != nil {
		return 1, err
	}
	n := res.Push
	fmt.Fprintf(stdout, "%s push for a test call from %s to %s (call id %s), app %s, %s\n\n",
		n.Kind, p.Caller, p.Account, n.CallID, n.BundleID, n.Environment)
	fmt.Fprintf(stdout, "POST %s\n", strings.Replace(res.URL, n.Token, pushnotify.TokenPrefix(n.Token), 1))
	printHeaders(stdout, res.Header)
	fmt.Fprintln(stdout)
	var body bytes.Buffer
	if json.Indent(&body, res.Body, "", "  ") != nil {
		body.Reset()
		body.Write(res.Body)
	}
	fmt.Fprintf(stdout, "%s\n(%d bytes)\n\n", body.String(), len(res.Body))

	switch {
	case !res.Sent:
		fmt.Fprintln(stdout, "apns.dry_run is on: the request above was built, not sent.")
		return dryRunExit, nil
	case res.Err != nil:
		fmt.Fprintf(stdout, "no answer from APNs after %s: %v\n", res.Latency.Round(time.Millisecond), res.Err)
		return 1, nil
	}
	what := "accepted"
	if res.Reason != "" {
		what = res.Reason
	}
	fmt.Fprintf(stdout, "APNs answered %d %s in %s\n", res.Status, what, res.Latency.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  apns-id: %s\n", res.APNsID)
	if !res.Timestamp.IsZero() {
		fmt.Fprintf(stdout, "  timestamp: %s (the token is invalid since then)\n", res.Timestamp.UTC().Format(time.RFC3339))
	}
	if res.Status == http.StatusOK {
		return 0, nil
	}
	if h := pushTestHints[res.Reason]; h != "" {
		fmt.Fprintln(stdout, "hint: "+h)
	}
	return 1, nil
}

// pushTestHints say what usually causes an answer (docs/apns.md, "When it
// does not work").
var pushTestHints = map[string]string{
	"BadDeviceToken":            "the token belongs to the other environment (try --sandbox or --production), or it is not a device token",
	"DeviceTokenNotForTopic":    "a voip push needs the app's PushKit token, alert and background pushes its regular token; or the token is another app's",
	"Unregistered":              "the app was removed from the device, or the token was replaced",
	"ExpiredToken":              "the token was replaced: the app must register again",
	"TopicDisallowed":           "the credentials do not cover this topic (a VoIP Services certificate covers only <bundle_id>.voip)",
	"InvalidProviderToken":      "team_id or key_id does not match the key, or the key was revoked",
	"ExpiredProviderToken":      "the JWT is too old: is this machine's clock right?",
	"BadCertificate":            "APNs does not accept the certificate",
	"BadCertificateEnvironment": "the certificate is for the other environment",
	"BadTopic":                  "the bundle id is not one the credentials know",
	"TooManyRequests":           "too many pushes to this token in a short time: wait a little",
}

// printHeaders prints the request's headers as HTTP/2 sends them (lower
// case), the JWT as its header and claims only: its signature is a
// credential for an hour.
func printHeaders(w io.Writer, h http.Header) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			if strings.EqualFold(k, "authorization") {
				v = describeJWT(v)
			}
			fmt.Fprintf(w, "%s: %s\n", strings.ToLower(k), v)
		}
	}
}

func describeJWT(v string) string {
	raw, ok := strings.CutPrefix(v, "bearer ")
	parts := strings.Split(raw, ".")
	if !ok || len(parts) != 3 {
		return "<not shown>"
	}
	hdr, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	claims, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		return "bearer <a JWT, not shown>"
	}
	return fmt.Sprintf("bearer <JWT %s %s, signature not shown>", hdr, claims)
}
