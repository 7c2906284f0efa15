package component

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglepush/jinglepush/jingle"
)

// Rosters reads users' rosters from their server (XEP-0356: the component
// is granted roster "get", as deploy/prosody sets up), for calls that ring
// only for contacts (calls.ring_from = "contacts"; sessions.Rosters). Rosters
// are cached, a bounded number for a bounded time, and a roster push from
// the server (when it sends them) updates the cache at once.
type Rosters struct {
	ttl, timeout time.Duration
	max          int

	mu      sync.Mutex
	comp    *Component
	cache   map[string]cachedRoster
	pending map[string]chan []byte // iq id → the answer's raw bytes
}

type cachedRoster struct {
	contacts map[string]string // bare JID → subscription
	at       time.Time
}

// ErrNoRoster means the roster could not be read: the component is not
// connected, the server did not answer in time, or refused.
var ErrNoRoster = errors.New("component: roster unavailable")

// NewRosters returns a roster reader that keeps up to max rosters for ttl
// and waits up to timeout for the server. Give it to New.
func NewRosters(max int, ttl, timeout time.Duration) *Rosters {
	return &Rosters{ttl: ttl, timeout: timeout, max: max,
		cache: make(map[string]cachedRoster), pending: make(map[string]chan []byte)}
}

func (r *Rosters) attach(c *Component) {
	r.mu.Lock()
	r.comp = c
	r.mu.Unlock()
}

// Subscribed reports whether contact is in account's roster with a
// subscription of from or both: the contact may see the user's presence,
// the RFC 6121 sense of "a contact".
func (r *Rosters) Subscribed(ctx context.Context, account, contact string) (bool, error) {
	contacts, err := r.roster(ctx, account)
	if err != nil {
		return false, err
	}
	sub := contacts[contact]
	return sub == "from" || sub == "both", nil
}

func (r *Rosters) roster(ctx context.Context, account string) (map[string]string, error) {
	r.mu.Lock()
	if e, ok := r.cache[account]; ok && time.Since(e.at) < r.ttl {
		r.mu.Unlock()
		return e.contacts, nil
	}
	c := r.comp
	r.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%w: no component", ErrNoRoster)
	}
	st := c.out.Load()
	if st == nil {
		return nil, fmt.Errorf("%w: not connected", ErrNoRoster)
	}
	to, err := jid.Parse(account)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoRoster, err)
	}
	id := "roster-" + randomID()
	answer := make(chan []byte, 1)
	r.mu.Lock()
	r.pending[id] = answer
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
	}()
	iq := stanza.IQ{ID: id, Type: stanza.GetIQ, To: to, From: c.domain}
	query := xml.StartElement{Name: xml.Name{Space: jingle.NSRoster, Local: "query"}}
	if err := st.send(writeWait, iq.Wrap(xmlstream.Wrap(nil, query))); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoRoster, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	select {
	case raw := <-answer:
		ro, err := jingle.ParseRoster(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoRoster, err)
		}
		if ro.Account.String() != account {
			return nil, fmt.Errorf("%w: the answer came from %s", ErrNoRoster, ro.Account)
		}
		contacts := make(map[string]string, len(ro.Items))
		for _, it := range ro.Items {
			contacts[it.JID.Bare().String()] = it.Subscription
		}
		r.store(account, contacts)
		return contacts, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrNoRoster, ctx.Err())
	}
}

func (r *Rosters) store(account string, contacts map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[account]; !ok && len(r.cache) >= r.max {
		// Forget the stalest half: rosters are read again when asked.
		n := 0
		for k, e := range r.cache {
			if time.Since(e.at) > r.ttl/2 || n < r.max/2 {
				delete(r.cache, k)
				n++
			}
		}
	}
	r.cache[account] = cachedRoster{contacts: contacts, at: time.Now()}
}

// deliver hands the answer to an IQ we sent to whoever waits for it; it
// reports whether somebody did.
func (r *Rosters) deliver(id string, raw []byte) bool {
	r.mu.Lock()
	ch, ok := r.pending[id]
	r.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case ch <- append([]byte(nil), raw...):
	default:
	}
	return true
}

// push applies a roster push to a cached roster (a roster not cached is
// read whole when it is next needed).
func (r *Rosters) push(ro jingle.Roster) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[ro.Account.String()]
	if !ok {
		return
	}
	contacts := make(map[string]string, len(e.contacts)+1)
	for k, v := range e.contacts {
		contacts[k] = v
	}
	for _, it := range ro.Items {
		if it.Subscription == "remove" {
			delete(contacts, it.JID.Bare().String())
		} else {
			contacts[it.JID.Bare().String()] = it.Subscription
		}
	}
	r.cache[ro.Account.String()] = cachedRoster{contacts: contacts, at: e.at}
}

func randomID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
