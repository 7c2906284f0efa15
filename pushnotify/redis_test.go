package pushnotify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/jingle"
	"github.com/jinglepush/jinglepush/pushnotify"
	"github.com/jinglepush/jinglepush/sessions"
)

// A call rings, APNs answers 410 Unregistered for the device's VoIP token,
// and the token is gone from Redis: the whole device when it had no other
// token, with its XEP-0357 node.
func TestDeadTokenRemovedFromRedis(t *testing.T) {
	const (
		voipTok  = "aaaa000000000000000000000000000000000000000000000000000000000001"
		alertTok = "bbbb000000000000000000000000000000000000000000000000000000000001"
		otherTok = "aaaa000000000000000000000000000000000000000000000000000000000002"
		againTok = "aaaa000000000000000000000000000000000000000000000000000000000003"
		bundle   = "com.example.chat"
		account  = "bob@example.com"
		devices  = "test:{bob@example.com}:devices"
	)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.StartRedis(t).Addr})
	t.Cleanup(func() { rdb.Close() })
	store := sessions.NewStore(rdb, "test:", sessions.StoreOptions{})
	if err := store.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	a := testenv.StartAPNs(t)
	a.Script(voipTok, testenv.Response{Status: 410, Reason: "Unregistered"})
	a.Script(otherTok, testenv.Response{Status: 410, Reason: "Unregistered"})
	// APNs found this one invalid an hour ago; the app has registered it since.
	a.Script(againTok, testenv.Response{Status: 410, Reason: "Unregistered", Timestamp: time.Now().Add(-time.Hour).UnixMilli()})
	reg := prometheus.NewRegistry()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pushnotify.New(pushnotify.Config{
		Apps:     []pushnotify.App{{BundleID: bundle, Environment: pushnotify.Production, TeamID: "TEAM123456", KeyID: "KEY1234567", AuthKey: key}},
		Endpoint: a.URL, RootCAs: a.CertPool(),
	}, store, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close(ctx) })
	svc := sessions.NewService(store, sender, nil, sessions.Config{
		ServedDomains: []string{"example.com"},
		Apps:          []sessions.App{{BundleID: bundle, Environment: pushnotify.Production}},
	}, nil, nil)

	register := func(deviceID, voip, tok string) sessions.Device {
		t.Helper()
		d, err := svc.Register(ctx, sessions.Registration{Account: account, Resource: deviceID, DeviceID: deviceID, VoIPToken: voip, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	stored := func(deviceID string) (sessions.Device, bool) {
		t.Helper()
		ds, err := store.Devices(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.ID == deviceID {
				return d, true
			}
		}
		return sessions.Device{}, false
	}
	ring := func(id string) {
		t.Helper()
		err := svc.Call(ctx, jingle.CallEvent{
			Action: jingle.ActionPropose, ID: id, Media: []string{"audio"},
			From: jid.MustParse("alice@example.com/pc"), To: jid.MustParse(account),
			Wrapper: jingle.Wrapper{From: jid.MustParse("example.com"), To: jid.MustParse("push.example.com")},
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Both tokens: the dead VoIP token goes, the device stays with its alert token.
	register("iphone", voipTok, alertTok)
	if d, ok := stored("iphone"); !ok || d.VoIPToken != voipTok {
		t.Fatalf("registered device %+v", d)
	}
	ring("c1")
	a.Wait(t, 1, 10*time.Second)
	testenv.Eventually(t, 10*time.Second, func() bool {
		d, ok := stored("iphone")
		return ok && d.VoIPToken == ""
	}, "the VoIP token to be gone from Redis")
	if d, _ := stored("iphone"); d.Token != alertTok {
		t.Errorf("the alert token went too: %+v", d)
	}

	// Only a VoIP token: the device goes, and a publish for its node finds
	// nothing.
	ipad := register("ipad", otherTok, "")
	ring("c2")
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, ok := stored("ipad")
		return !ok
	}, "the device to be gone from Redis")
	err = svc.Publish(ctx, jid.MustParse("example.com"), jingle.Publish{Node: ipad.Node,
		Options: jingle.Form{Fields: map[string][]string{"secret": {ipad.Secret}}}})
	if !errors.Is(err, sessions.ErrUnknownNode) {
		t.Errorf("publish for the removed device's node: %v", err)
	}
	if got := requests(a, otherTok); got != 1 {
		t.Errorf("%d requests for the dead token, want 1", got)
	}

	// A 410 older than the registration: the token is valid again and stays.
	register("mac", againTok, "")
	ring("c3")
	testenv.Eventually(t, 10*time.Second, func() bool { return counter(t, reg, "jinglepush_apns_tokens_kept_total") == 1 }, "the stale 410 to be counted")
	if d, ok := stored("mac"); !ok || d.VoIPToken != againTok {
		t.Errorf("a token registered after APNs found it invalid was removed: %+v %v", d, ok)
	}
}

// counter sums the series of a counter in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func requests(a *testenv.APNs, token string) int {
	n := 0
	for _, r := range a.Requests() {
		if r.Token == token {
			n++
		}
	}
	return n
}
