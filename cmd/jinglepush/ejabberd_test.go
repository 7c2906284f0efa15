package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jinglepush/jinglepush/internal/testenv"
	"github.com/jinglepush/jinglepush/internal/xmppclient"
)

// Scenarios that only ejabberd produces: the mod_service_log firehose, and
// offline storage replaying a propose to the callee's next session (Prosody's
// counterpart of the latter is TestStaleProposeNeverRings). The server
// archives messages (mod_mam), as many installations do: mod_push then
// publishes from the archive hook, and every copy carries a <stanza-id/>.
func TestEjabberd(t *testing.T) {
	srv := ejabberdServers(t, testenv.EjabberdOptions{MAM: true})

	t.Run("firehose: a call rings exactly once while other users chat", func(t *testing.T) {
		// The noise users call each other every tenth round: far beyond
		// the call limits, which are not what this test is about.
		s := newStack(t, srv, stackOptions{callsTOML: "caller_callee_per_minute = 0\ncaller_per_minute = 0"})
		bob, _, ac, d := s.hibernatedCallee()

		ignored := `jinglepush_component_stanzas_total{kind="ignored"}`
		ignoredBefore := s.metric(ignored)
		n := newNoise(t, s, 4, 250)
		// The call starts once the firehose is flowing.
		s.waitMetric(ignored, ignoredBefore+300)
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		if r := s.apns.Wait(t, 1, waitShort)[0]; r.Token != d.voip || body(t, r).Call.ID != id {
			t.Errorf("push %s to %s", r.Body, r.Token)
		}
		sent, proposes := n.wait()

		s.pushes(1)
		// Every stanza the noise users sent came back at least once, and
		// was discarded without a worker.
		if got := s.metric(ignored) - ignoredBefore; got < float64(sent) {
			t.Errorf("%v stanzas ignored, fewer than the %d the other users sent", got, sent)
		}
		// Two copies of every propose (the caller's send hook, the
		// callee's receive hook: online or hibernated callees): one call
		// each, one duplicate each.
		calls := float64(proposes + 1)
		created := s.metric(`jinglepush_calls_events_total{action="propose",outcome="created"}`)
		dup := s.metric(`jinglepush_calls_events_total{action="propose",outcome="duplicate"}`)
		if created != calls || dup != calls {
			t.Errorf("%d proposes: %v created, %v duplicates", proposes+1, created, dup)
		}
		for _, m := range []string{
			`jinglepush_component_dropped_total{reason="queue_full"}`,
			`jinglepush_component_dropped_total{reason="oversize"}`,
			`jinglepush_component_dropped_total{reason="malformed"}`,
		} {
			if v := s.metric(m); v != 0 {
				t.Errorf("%s = %v", m, v)
			}
		}
		if v := s.metric(`jinglepush_component_connections_total{result="connected"}`); v != 1 {
			t.Errorf("%v connections: the stream went down", v)
		}
		t.Logf("the other users sent %d stanzas (%d proposes); %v copies ignored", sent, proposes, s.metric(ignored)-ignoredBefore)
	})

	t.Run("a stale propose replayed from offline storage never rings", func(t *testing.T) {
		// jinglepush was down while alice called offline bob; the propose
		// waited in offline storage. When bob logs in long after, ejabberd
		// delivers it with <delay/> and mod_service_log forwards bob's copy.
		s := newStack(t, srv, stackOptions{staleAfter: time.Second})
		bob, alice := s.user("bob"), s.user("alice")
		bc := s.login(bob, "phone", false)
		s.registerDevice(bc, device{id: "iphone", voip: token(), token: token()})
		if err := bc.Close(); err != nil {
			t.Fatal(err)
		}
		s.stop()
		ac := s.login(alice, "pc", false)
		id := uuid.NewString()
		send(t, ac, propose(bob, id))
		time.Sleep(1500 * time.Millisecond) // older than stale_after
		s.start()
		bc = s.login(bob, "phone", false)
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		defer cancel()
		st, err := bc.WaitFor(ctx, func(st xmppclient.Stanza) bool { return st.Name.Local == "message" && st.ID() == "m-"+id })
		if err != nil {
			t.Fatalf("bob did not get the stored propose: %v", err)
		}
		t.Logf("replayed: %s", st.Raw)
		s.waitMetric(`jinglepush_calls_events_total{action="propose",outcome="stale"}`, 1)
		s.settle()
		if got := s.apns.Requests(); len(got) != 0 {
			t.Errorf("%d pushes for a stale propose", len(got))
		}
	})
}

// noise is users of one server talking to each other as fast as the server
// lets them: chat messages, presence broadcasts, pings to the server and to
// each other, and now and then a call they answer at once.
type noise struct {
	wg       sync.WaitGroup
	sent     atomic.Int64
	proposes atomic.Int64
}

// newNoise logs in users (an even number, in pairs) who each run rounds
// rounds; wait returns what they sent.
func newNoise(t *testing.T, s *stack, users, rounds int) *noise {
	t.Helper()
	n := &noise{}
	clients := make([]*xmppclient.Client, users)
	for i := range clients {
		clients[i] = s.login(s.user("noise"), "pc", false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	for i, c := range clients {
		peer := clients[i^1]
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.talk(ctx, c, peer, rounds); err != nil {
				t.Errorf("noise %s: %v", c.JID(), err)
			}
		}()
	}
	return n
}

func (n *noise) talk(ctx context.Context, c, peer *xmppclient.Client, rounds int) error {
	sendRaw := func(raw string) error {
		n.sent.Add(1)
		return c.Send(raw)
	}
	iq := func(raw string) error {
		n.sent.Add(1)
		_, err := c.IQ(ctx, raw)
		return err
	}
	for r := range rounds {
		if err := sendRaw(fmt.Sprintf("<message to='%s' type='chat' id='n%d'><body>message %d</body></message>", peer.JID(), r, r)); err != nil {
			return err
		}
		if err := iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
			return err
		}
		switch r % 10 {
		case 3:
			if err := sendRaw(fmt.Sprintf("<presence><status>round %d</status></presence>", r)); err != nil {
				return err
			}
		case 5:
			if err := iq("<iq type='get' to='" + peer.JID() + "'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
				return err
			}
		case 7:
			// A call between two online users, called off once it rang:
			// work for the queues and Redis, never a push (no devices).
			// Retracting only then keeps the callee's copy of the propose
			// ahead of the caller's copy of the retract.
			id := uuid.NewString()
			n.proposes.Add(1)
			if err := sendRaw(propose(peer.JID(), id)); err != nil {
				return err
			}
			if _, err := peer.WaitFor(ctx, func(st xmppclient.Stanza) bool { return st.ID() == "m-"+id }); err != nil {
				return err
			}
			if err := sendRaw(jmi("retract", peer.JID(), id)); err != nil {
				return err
			}
		}
	}
	// The peer has everything once it has the last message.
	last := fmt.Sprintf("n%d", rounds-1)
	_, err := peer.WaitFor(ctx, func(st xmppclient.Stanza) bool {
		return st.Name.Local == "message" && st.ID() == last && st.From() == c.JID()
	})
	return err
}

// wait waits until every user is done and returns how many stanzas they
// sent, and how many of those were proposes.
func (n *noise) wait() (sent, proposes int) {
	n.wg.Wait()
	return int(n.sent.Load()), int(n.proposes.Load())
}
