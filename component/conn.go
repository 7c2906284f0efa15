package component

import (
	"bufio"
	"net"
)

// readConn is the server connection as mellium sees it during the
// handshake. It implements io.ByteReader, so encoding/xml reads it byte by
// byte instead of wrapping it in a buffer of its own: the handshake then
// consumes exactly its bytes, and the stanzas that follow in the same TCP
// segment stay in our buffer for the framer.
type readConn struct {
	net.Conn
	r *bufio.Reader
}

func newReadConn(c net.Conn) *readConn {
	return &readConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (c *readConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *readConn) ReadByte() (byte, error)    { return c.r.ReadByte() }
func (c *readConn) UnreadByte() error          { return c.r.UnreadByte() }
