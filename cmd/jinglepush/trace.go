package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jinglepush/jinglepush/sessions"
)

// trace: what happened to a call, from what the live path recorded in
// Redis (sessions/trace.go): each copy of the propose and the wake decided
// for each device, each push attempt with APNs's answer, the end. Without
// a call id: the account's recent calls.

// eventView is a trace line with its meaning in words.
type eventView struct {
	sessions.TraceEvent
	Explain string `json:"explain"`
}

type traceView struct {
	sessions.CallTrace
	Events []eventView `json:"events"`
}

// viewTrace puts each event of t in words.
func viewTrace(t sessions.CallTrace) traceView {
	v := traceView{CallTrace: t, Events: make([]eventView, len(t.Events))}
	for i, e := range t.Events {
		v.Events[i] = eventView{TraceEvent: e, Explain: e.Explain()}
	}
	return v
}

func traceCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	c := newCommand("trace", "ACCOUNT [CALL-ID | CALLER/CALL-ID]", stderr)
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args, 1, 2)
	if err != nil {
		return c.exit(err)
	}
	return c.exit(trace(ctx, c, environ, pos, *asJSON, stdout))
}

func trace(ctx context.Context, c *command, environ []string, pos []string, asJSON bool, stdout io.Writer) error {
	account, err := bareJID(pos[0])
	if err != nil {
		return err
	}
	cfg, err := c.config(environ)
	if err != nil {
		return err
	}
	if cfg.Calls.TraceTTL <= 0 {
		fmt.Fprintln(c.stderr, "jinglepush trace: calls.trace_ttl is 0s: calls are not traced, only their records (while they ring) are shown")
	}
	store, done, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	recent, err := store.RecentCalls(ctx, account)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		return listCalls(ctx, store, account, recent, asJSON, stdout)
	}

	key, ok := findCall(recent, pos[1])
	if !ok {
		caller, id, found := strings.Cut(pos[1], "/")
		if !found || caller == "" || id == "" {
			return fmt.Errorf("no call %q among the %d recent calls of %s (kept calls.trace_ttl = %s); name an older one as CALLER/CALL-ID", pos[1], len(recent), account, cfg.Calls.TraceTTL)
		}
		if caller, err = bareJID(caller); err != nil {
			return err
		}
		key = sessions.CallKey{Account: account, Caller: caller, ID: id}
	}
	t, err := store.Trace(ctx, account, key.Caller, key.ID)
	if err != nil {
		return err
	}
	if t.State == "" && len(t.Events) == 0 {
		return fmt.Errorf("Redis holds nothing of call %s from %s to %s: never seen, or older than calls.trace_ttl (%s)", key.ID, key.Caller, account, cfg.Calls.TraceTTL)
	}
	v := viewTrace(t)
	if asJSON {
		return printJSON(stdout, v)
	}
	printTrace(stdout, v)
	return nil
}

// findCall finds a call by id among the recent ones; an id two callers
// used names the newest call.
func findCall(recent []sessions.CallKey, id string) (sessions.CallKey, bool) {
	for _, k := range recent {
		if k.ID == id {
			return k, true
		}
	}
	return sessions.CallKey{}, false
}

func listCalls(ctx context.Context, store *sessions.Store, account string, recent []sessions.CallKey, asJSON bool, stdout io.Writer) error {
	views := make([]traceView, 0, len(recent))
	for _, k := range recent {
		t, err := store.Trace(ctx, account, k.Caller, k.ID)
		if err != nil {
			return err
		}
		views = append(views, viewTrace(t))
	}
	if asJSON {
		return printJSON(stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintf(stdout, "no recent calls to %s\n", account)
		return nil
	}
	fmt.Fprintf(stdout, "recent calls to %s, newest first (jinglepush trace %s CALL-ID for one):\n", account, account)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STARTED\tCALLER\tCALL ID\tSTATE\tPUSHES\tLAST EVENT")
	for _, v := range views {
		started := v.Created
		if started.IsZero() && len(v.Events) > 0 {
			started = v.Events[0].At
		}
		pushes, last := 0, "-"
		for _, e := range v.Events {
			if e.Event == "push" {
				pushes++
			}
		}
		if len(v.Events) > 0 {
			l := v.Events[len(v.Events)-1]
			last = l.Event + " " + l.Text
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", stampMS(started), v.Caller, v.ID, stateText(v.CallTrace), pushes, last)
	}
	return w.Flush()
}

func stateText(t sessions.CallTrace) string {
	switch {
	case t.State == "":
		return "(record expired)"
	case t.Reason != "":
		return t.State + " (" + t.Reason + ")"
	}
	return t.State
}

func printTrace(w io.Writer, v traceView) {
	fmt.Fprintf(w, "call %s from %s to %s\n", v.ID, orDash(v.From), v.Account)
	if v.From == "" {
		fmt.Fprintf(w, "caller   %s\n", v.Caller)
	}
	fmt.Fprintf(w, "state    %s\n", stateText(v.CallTrace))
	if !v.Created.IsZero() {
		fmt.Fprintf(w, "created  %s, rings until %s", stampMS(v.Created), clockMS(v.Deadline))
		if !v.Ended.IsZero() {
			fmt.Fprintf(w, ", ended %s (after %s)", clockMS(v.Ended), v.Ended.Sub(v.Created).Round(time.Millisecond))
		}
		fmt.Fprintln(w)
	}
	if len(v.Wakes) > 0 {
		var ws []string
		for _, k := range v.Wakes {
			ws = append(ws, fmt.Sprintf("%s %s %s", k.Device, k.Kind, k.State))
		}
		fmt.Fprintf(w, "woken    %s\n", strings.Join(ws, "; "))
	}
	if !v.Pushed.IsZero() {
		fmt.Fprintf(w, "pushed   first push APNs took at %s", clockMS(v.Pushed))
		if !v.Rang.IsZero() {
			fmt.Fprintf(w, "; the device rang %s later", v.Rang.Sub(v.Pushed).Round(time.Millisecond))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	if len(v.Events) == 0 {
		fmt.Fprintln(w, "(no trace: calls.trace_ttl is 0s, or it expired)")
		return
	}
	t0 := v.Events[0].At
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\t+MS\tEVENT\tWHAT")
	for _, e := range v.Events {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", clockMS(e.At), e.At.Sub(t0).Milliseconds(), e.Event, e.Explain)
	}
	tw.Flush()
}

func stampMS(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func clockMS(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
