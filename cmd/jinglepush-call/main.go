// Command jinglepush-call places a test call through a running jinglepush,
// the way an iPhone app and a caller's client would: the callee's "app"
// registers a device with fake push tokens, enables XEP-0357 on its server
// and goes offline; then the caller sends a XEP-0353 <propose/>. jinglepush
// should answer with a VoIP push for the callee's token (logged when
// apns.dry_run is on).
//
//	jinglepush-call -server 127.0.0.1:5222 -component push.localhost \
//	    -caller alice@localhost -callee bob@localhost -password secret
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jinglepush-call:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:5222", "the XMPP server's client port")
	component := flag.String("component", "push.localhost", "jinglepush's JID")
	caller := flag.String("caller", "alice@localhost", "the caller's account")
	callee := flag.String("callee", "bob@localhost", "the callee's account")
	password := flag.String("password", "", "the password of both accounts")
	retract := flag.Duration("retract-after", 0, "retract the call after this long (0: let it ring out)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The callee's iPhone app: register, enable push, go away.
	bob, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: *server, JID: *callee, Password: *password, Resource: "iphone", Presence: true})
	if err != nil {
		return fmt.Errorf("callee login: %w", err)
	}
	voip, tok := fakeToken(), fakeToken()
	res, err := bob.Command(ctx, *component, "register-push-apns", "execute", "", map[string]string{
		"device-id": "demo-iphone", "voip-token": voip, "token": tok,
	})
	if err != nil {
		return fmt.Errorf("register-push-apns: %w", err)
	}
	node, secret := res.Value("node"), res.Value("secret")
	fmt.Printf("%s registered device demo-iphone: voip-token %s…, node %s\n", *callee, voip[:8], node)
	if err := bob.EnablePush(ctx, *component, node, map[string]string{"secret": secret}); err != nil {
		return err
	}
	if err := bob.Close(); err != nil {
		return err
	}
	fmt.Printf("%s went offline\n", *callee)

	// The caller.
	alice, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: *server, JID: *caller, Password: *password, Resource: "demo", Presence: true})
	if err != nil {
		return fmt.Errorf("caller login: %w", err)
	}
	defer alice.Close()
	id := uuid.NewString()
	err = alice.Send(fmt.Sprintf("<message to='%s' type='chat' id='propose-%s'><propose xmlns='urn:xmpp:jingle-message:0' id='%s'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/></message>", *callee, id, id))
	if err != nil {
		return err
	}
	fmt.Printf("%s calls %s: call id %s\n", *caller, *callee, id)
	if *retract > 0 {
		time.Sleep(*retract)
		if err := alice.Send(fmt.Sprintf("<message to='%s' type='chat' id='retract-%s'><retract xmlns='urn:xmpp:jingle-message:0' id='%s'/><store xmlns='urn:xmpp:hints'/></message>", *callee, id, id)); err != nil {
			return err
		}
		fmt.Printf("%s hung up\n", *caller)
	}
	time.Sleep(500 * time.Millisecond) // let the server take the stanzas before the stream ends
	return nil
}

// fakeToken is a random 32-byte device token in hex, like an iPhone's.
func fakeToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
