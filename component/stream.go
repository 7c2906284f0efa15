package component

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp"
)

// Writing has one owner: the stream's writer goroutine. Everything that
// sends (IQ answers from the read loop and from workers, keepalives, the
// closing </stream:stream>) hands the writer its element through a bounded
// outbox. The read loop never waits for a slow server socket: when the
// outbox is full, its answer is dropped and counted; a worker waits a
// little (writeWait) before its answer is dropped.

const (
	outboxSize   = 256
	writeTimeout = 10 * time.Second // one element on the socket
	writeWait    = 5 * time.Second  // a worker's wait for room in the outbox
	closeTimeout = 2 * time.Second  // the closing element, and the server's own close
)

var errOutboxFull = errors.New("component: outbox full: the server reads too slowly")

// stream_ is one connected session and its writer.
type stream_ struct {
	s      *xmpp.Session
	conn   net.Conn
	out    chan xml.TokenReader
	closed chan struct{} // closed when the writer should end the stream
	done   chan struct{} // closed when the writer is gone
	once   sync.Once
}

func newStream(s *xmpp.Session, conn net.Conn) *stream_ {
	return &stream_{s: s, conn: conn, out: make(chan xml.TokenReader, outboxSize),
		closed: make(chan struct{}), done: make(chan struct{})}
}

// quit asks the writer to end the stream.
func (st *stream_) quit() { st.once.Do(func() { close(st.closed) }) }

// sendNow queues r without waiting: for the read loop.
func (st *stream_) sendNow(r xml.TokenReader) error {
	select {
	case st.out <- r:
		return nil
	case <-st.done:
		return net.ErrClosed
	default:
		return errOutboxFull
	}
}

// send queues r, waiting up to wait for room: for workers.
func (st *stream_) send(wait time.Duration, r xml.TokenReader) error {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case st.out <- r:
		return nil
	case <-st.done:
		return net.ErrClosed
	case <-t.C:
		return errOutboxFull
	}
}

// write puts one element on the socket within writeTimeout.
//
// The deadline is set on the connection here, not through a context:
// mellium applies a context's end by setting the connection's write
// deadline into the past from a goroutine, which can race with the context
// being cancelled as Send returns and then fail the next write. Its
// context is therefore one that never ends.
func (st *stream_) write(r xml.TokenReader) error {
	_ = st.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	defer st.conn.SetWriteDeadline(time.Time{})
	return st.s.Send(context.Background(), r)
}

// writer is the stream's only writer. It writes what the outbox holds, a
// space every keepalive interval without other writes (a dead connection
// then fails a write and is replaced), and on closing the rest of the
// outbox and </stream:stream>, all within closeTimeout. A write that fails
// closes the connection: the read loop ends and the stream is reopened.
func (c *Component) writer(st *stream_, keepalive time.Duration) {
	defer close(st.done)
	var tick <-chan time.Time
	if keepalive > 0 {
		t := time.NewTicker(keepalive)
		defer t.Stop()
		tick = t.C
	}
	last := time.Now()
	for {
		select {
		case r := <-st.out:
			if err := st.write(r); err != nil {
				c.m.dropped.WithLabelValues("reply_failed").Inc()
				c.log.Warn("write to the server failed: reconnecting", "error", err)
				_ = st.conn.Close()
				return
			}
			last = time.Now()
		case <-tick:
			if time.Since(last) < keepalive {
				continue
			}
			_ = st.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, err := io.WriteString(st.conn, " ")
			_ = st.conn.SetWriteDeadline(time.Time{})
			if err != nil {
				_ = st.conn.Close()
				return
			}
			last = time.Now()
		case <-st.closed:
			c.closeStream(st)
			return
		}
	}
}

// closeStream writes what is queued and ends our stream, within
// closeTimeout whatever the socket does, and gives the server as long
// again to end its own before the read loop stops.
func (c *Component) closeStream(st *stream_) {
	end := time.Now().Add(closeTimeout)
	_ = st.conn.SetWriteDeadline(end)
	for {
		select {
		case r := <-st.out:
			if st.s.Send(context.Background(), r) == nil {
				continue
			}
			c.m.dropped.WithLabelValues("reply_failed").Inc()
		default:
		}
		break
	}
	_ = st.s.Close()
	_ = st.conn.SetReadDeadline(time.Now().Add(closeTimeout))
}
