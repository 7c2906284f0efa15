package jingle_test

import (
	"testing"

	"github.com/jinglepush/jinglepush/jingle"
)

// The Prosody firewall's copy of a propose queued for a hibernated phone
// (variant B), the common case of a call that needs a push.
func BenchmarkParseCall(b *testing.B) {
	benchParse(b, "prosody-fw-hibernated-propose.xml", jingle.ParseCall)
}

// ejabberd's mod_service_log copies every stanza of every user: nearly all
// of them are thrown away by Classify.
func BenchmarkClassifyIgnore(b *testing.B) {
	for _, bc := range [...]struct{ name, file string }{
		0: {"chat", "ejabberd-servicelog-chat.xml"},
		1: {"presence", "ejabberd-servicelog-presence.xml"},
	} {
		raw := testdata(b, bc.file)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if jingle.Classify(raw) != jingle.KindIgnore {
					b.Fatal("not ignored")
				}
			}
		})
	}
}

func BenchmarkClassifyCall(b *testing.B) {
	raw := testdata(b, "ejabberd-servicelog-propose.xml")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if jingle.Classify(raw) != jingle.KindCall {
			b.Fatal("not a call")
		}
	}
}

// Prosody's privileged presence snapshot (with <delay/>).
func BenchmarkParsePresence(b *testing.B) {
	benchParse(b, "prosody-presence-snapshot.xml", jingle.ParsePresence)
}

// Prosody's publish with summary and publish-options, the largest one.
func BenchmarkParseIQPublish(b *testing.B) {
	benchParse(b, "prosody-publish-pubopts.xml", jingle.ParseIQ)
}

// benchParse runs parse over testdata/file.
func benchParse[T any](b *testing.B, file string, parse func([]byte) (T, error)) {
	raw := testdata(b, file)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
