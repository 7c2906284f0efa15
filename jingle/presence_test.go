package jingle_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jinglepush/jinglepush/jingle"
)

type presenceView struct {
	From, To, Type, ID, Status string
	Delay                      string
	Available                  bool
}

func viewPresence(p jingle.Presence) presenceView {
	v := presenceView{From: p.From.String(), To: p.To.String(), Type: p.Type, ID: p.ID, Status: p.Status, Available: p.Available()}
	if !p.Delay.IsZero() {
		v.Delay = p.Delay.Format(time.RFC3339Nano)
	}
	return v
}

var presenceTests = [...]struct {
	file string
	want presenceView
	err  error
}{
	0: {file: "prosody-presence-snapshot.xml", want: presenceView{From: "bob@localhost/spike", To: "push.localhost", ID: "4dd872a2c73b4f288145fd9995edc59d",
		Delay: "2026-11-22T04:20:37Z", Available: true}},
	1: {file: "prosody-presence-available.xml", want: presenceView{From: "bob@localhost/spike", To: "push.localhost", ID: "db1bff7e9b754b1cbba388f24c09de26", Available: true}},
	2: {file: "prosody-presence-unavailable.xml", want: presenceView{From: "bob@localhost/spike", To: "push.localhost", ID: "3adf094e4111497f8d4e54163775b1cc", Type: "unavailable"}},
	3: {file: "prosody-presence-hibernation-expired.xml", want: presenceView{From: "carol@localhost/spike", To: "push.localhost", Type: "unavailable",
		Status: "Disconnected: Hibernating too long"}},
	4: {file: "ejabberd-presence-available.xml", want: presenceView{From: "bob@localhost/spike", To: "push.localhost", ID: "6f60de95d16e48e7958e74a6fa09a664", Available: true}},
	5: {file: "ejabberd-presence-unavailable.xml", want: presenceView{From: "bob@localhost/spike", To: "push.localhost", Type: "unavailable"}},
	6: {file: "ejabberd-presence-roster-delay.xml", want: presenceView{From: "alice@localhost/spike", To: "push.localhost", ID: "6e07f767aebc49189b36f66ebc7721a2",
		Delay: "2026-11-22T04:39:04.984941Z", Available: true}},
	7:  {file: "malformed-presence-no-from.xml", err: jingle.ErrMalformed},
	8:  {file: "malformed-presence-bad-from.xml", err: jingle.ErrMalformed},
	9:  {file: "malformed-presence-bad-delay.xml", err: jingle.ErrMalformed},
	10: {file: "malformed-presence-truncated.xml", err: jingle.ErrMalformed},
	11: {file: "malformed-text-before.xml", err: jingle.ErrMalformed},
	12: {file: "malformed-declaration-before.xml", err: jingle.ErrMalformed},
	13: {file: "iq-ping.xml", err: jingle.ErrMalformed},
	14: {file: "ejabberd-servicelog-presence.xml", err: jingle.ErrMalformed},
}

func TestParsePresence(t *testing.T) {
	for i, tc := range presenceTests {
		t.Run(tc.file, func(t *testing.T) {
			raw := testdata(t, tc.file)
			p, err := jingle.ParsePresence(raw)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("%d: ParsePresence(%s) error = %v, want %v", i, tc.file, err, tc.err)
			}
			if err != nil {
				return
			}
			if got := viewPresence(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%d: ParsePresence(%s)\n got %+v\nwant %+v", i, tc.file, got, tc.want)
			}
		})
	}
}
