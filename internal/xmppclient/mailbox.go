package xmppclient

import (
	"context"
	"slices"
	"sync"
)

// mailbox holds inbound stanzas until someone takes them. It is unbounded so
// that the reader never blocks: a blocked reader would stop answering XEP-0198
// ack requests and IQ replies, which would change what the server does.
type mailbox struct {
	mu      sync.Mutex
	items   []Stanza
	changed chan struct{} // closed and replaced whenever items grows or the box closes
	err     error         // set when the stream has ended
}

func newMailbox() *mailbox { return &mailbox{changed: make(chan struct{})} }

func (m *mailbox) put(st Stanza) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items = append(m.items, st)
	close(m.changed)
	m.changed = make(chan struct{})
}

// close records why no more stanzas will come. Stanzas already in the box
// can still be taken.
func (m *mailbox) close(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return
	}
	m.err = err
	close(m.changed)
	m.changed = make(chan struct{})
}

// take removes and returns the oldest stanza for which match is true,
// waiting for one to arrive.
func (m *mailbox) take(ctx context.Context, match func(Stanza) bool) (Stanza, error) {
	for {
		m.mu.Lock()
		for i, st := range m.items {
			if match(st) {
				m.items = slices.Delete(m.items, i, i+1)
				m.mu.Unlock()
				return st, nil
			}
		}
		err, changed := m.err, m.changed
		m.mu.Unlock()
		if err != nil {
			return Stanza{}, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Stanza{}, ctx.Err()
		}
	}
}

// snapshot returns a copy of the stanzas waiting in the box.
func (m *mailbox) snapshot() []Stanza {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Stanza(nil), m.items...)
}
