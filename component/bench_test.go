package component

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFirehose is the ejabberd mod_service_log case: every stanza of
// every local user arrives as a forwarded copy, and almost none is a call.
// It measures the read loop's whole cost per stanza (framing, Classify,
// dispatch) over a mix of captured copies: chat messages, presences, IQ
// results and push enables.
func BenchmarkFirehose(b *testing.B) {
	var stream bytes.Buffer
	var n int
	for _, name := range []string{
		"ejabberd-servicelog-chat.xml", "ejabberd-servicelog-chat-mam.xml",
		"ejabberd-servicelog-presence.xml", "ejabberd-servicelog-presence-unavailable.xml",
		"ejabberd-servicelog-iq-result.xml", "ejabberd-servicelog-push-enable.xml",
	} {
		raw, err := os.ReadFile(filepath.Join("..", "jingle", "testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		stream.Write(bytes.TrimSpace(raw))
		n++
	}
	one := stream.Bytes()
	var all bytes.Buffer
	for range 1000 {
		all.Write(one)
	}
	n *= 1000
	c, err := New(Config{Domain: "push.localhost", ServedDomains: []string{"localhost"}}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(all.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f := newFramer(bufio.NewReaderSize(bytes.NewReader(all.Bytes()), 64<<10), 65536)
		for {
			raw, err := f.next()
			if err != nil {
				break
			}
			c.dispatch(ctx, nil, raw)
		}
	}
	b.StopTimer()
	perStanza := float64(b.Elapsed().Nanoseconds()) / float64(b.N*n)
	b.ReportMetric(perStanza, "ns/stanza")
	b.ReportMetric(1e9/perStanza, "stanzas/s")
}
