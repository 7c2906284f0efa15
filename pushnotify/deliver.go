package pushnotify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/jinglepush/jinglepush/sessions"
)

// job is one accepted push and its retry state.
type job struct {
	n        Notification
	queued   time.Time // when Push took it
	log      *slog.Logger
	attempts int
	last     answer                      // of the latest attempt
	bo       *backoff.ExponentialBackOff // nil until the first retry
	timer    *time.Timer                 // the pending retry
	logged   string                      // the last failure logged
}

func (s *Sender) work() {
	defer s.wg.Done()
	for {
		select {
		case j := <-s.queue:
			s.handle(j)
		case <-s.quit:
			return // only once nothing is pending: the queue is empty
		}
	}
}

// handle makes one attempt at j, then ends it or schedules its retry.
func (s *Sender) handle(j *job) {
	n := &j.n
	switch {
	case s.stopping.Load():
		s.giveUp(j, "shutdown")
		return
	case !time.Now().Before(n.Deadline):
		s.giveUp(j, "deadline")
		return
	case s.cfg.DryRun:
		s.logDryRun(j)
		s.end(j, "dry_run")
		return
	case (j.attempts > 0 || time.Since(j.queued) > s.cfg.BacklogCheck) && !s.wanted(j):
		s.logger(j).Info("push not sent: no longer wanted", "attempts", j.attempts, "last_result", j.last.result, "queued_for", time.Since(j.queued).Round(time.Millisecond))
		s.end(j, "not_wanted")
		return
	}

	c := s.client(clientKey{n.BundleID, n.Environment})
	var issued int64
	if c.signer != nil {
		issued = c.signer.issuedAt()
	}
	a := s.attempt(c, j)
	j.attempts++
	j.last = a
	if a.result == "not_wanted" {
		s.logger(j).Info("push cut in flight: no longer wanted", "attempts", j.attempts, "took", a.took.Round(time.Millisecond))
		s.end(j, "not_wanted")
		return
	}

	if a.outcome == sent {
		s.clearFault(c, n.Kind)
		s.m.lastSuccess.WithLabelValues(n.BundleID, string(n.Kind)).SetToCurrentTime()
		// Each call is logged once when its device is woken (sessions) and
		// again here only when the push needed retries: one write per call
		// on the hot path, not two.
		lvl := slog.LevelDebug
		if j.attempts > 1 {
			lvl = slog.LevelInfo
		}
		// No job logger (slog.With clones the handler) on the hot path.
		if s.log.Enabled(context.Background(), lvl) {
			s.log.LogAttrs(context.Background(), lvl, "push sent",
				slog.String("kind", string(n.Kind)), slog.String("call_id", n.CallID), slog.String("account", n.Account),
				slog.String("device", n.DeviceID), slog.String("token", tokenPrefix(n.Token)), slog.String("apns_id", n.ID),
				slog.Int("attempts", j.attempts))
		}
		s.end(j, a.result)
		return
	}
	log := s.logger(j)
	switch a.outcome {
	case deadToken:
		s.clearFault(c, n.Kind) // APNs took our credentials to judge the token
		s.removeToken(j)
		s.end(j, a.result)
		return
	case operatorErr:
		s.setFault(c, n.Kind, a.result)
		log.Error("APNs refused the app's credentials, topic or TLS: check its [[apns.apps]] entry; no device is removed",
			"bundle_id", n.BundleID, "environment", n.Environment, "result", a.result, "error", a.describe(n.Token))
		s.end(j, a.result)
		return
	case failOnce:
		log.Error("APNs rejected the push; it is not retried", "result", a.result, "error", a.describe(n.Token))
		s.end(j, a.result)
		return
	}

	if s.stopping.Load() {
		s.giveUp(j, "shutdown")
		return
	}
	delay := j.backoff(s.cfg)
	if a.outcome == refreshRetry && c.signer != nil && c.signer.renew(issued) {
		delay = 0 // a newer JWT goes with the retry
	}
	if !time.Now().Add(delay).Before(n.Deadline) {
		s.giveUp(j, "deadline")
		return
	}
	s.m.retries.WithLabelValues(string(n.Kind), a.result).Inc()
	if msg := a.describe(n.Token); msg != j.logged { // log a retry only when its cause changes
		j.logged = msg
		log.Warn("APNs attempt failed, retrying", "result", a.result, "attempts", j.attempts, "retry_in", delay, "error", msg)
	}
	s.report(j, a.result, false)
	s.schedule(j, delay)
}

// report tells n.Report how j's latest attempt went, or (with no attempt
// made) why it ended; final when the push ended.
func (s *Sender) report(j *job, result string, final bool) {
	if j.n.Report == nil {
		return
	}
	a := Attempt{Result: result, Attempts: j.attempts, Final: final}
	if j.attempts > 0 {
		a.Status, a.Latency = j.last.status, j.last.took
	}
	j.n.Report(a)
}

// wantedTimeout bounds one Notification.Wanted call.
const wantedTimeout = time.Second

// wanted asks j's Wanted, if any, whether the push is still worth a retry.
func (s *Sender) wanted(j *job) bool {
	if j.n.Wanted == nil {
		return true
	}
	d := time.Now().Add(wantedTimeout)
	if j.n.Deadline.Before(d) {
		d = j.n.Deadline
	}
	ctx, cancel := context.WithDeadline(s.stop, d)
	defer cancel()
	return j.n.Wanted(ctx)
}

// backoff is the wait before j's next attempt: exponential, with jitter.
func (j *job) backoff(cfg Config) time.Duration {
	if j.bo == nil {
		j.bo = &backoff.ExponentialBackOff{
			InitialInterval:     cfg.RetryMin,
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         cfg.RetryMax,
		}
	}
	return j.bo.NextBackOff()
}

// schedule queues j again after delay. It waits on a timer, not in a sender.
func (s *Sender) schedule(j *job, delay time.Duration) {
	s.mu.Lock()
	if s.stopping.Load() {
		s.mu.Unlock()
		s.giveUp(j, "shutdown")
		return
	}
	s.waiting[j] = struct{}{}
	j.timer = time.AfterFunc(delay, func() { s.wake(j) })
	s.mu.Unlock()
}

func (s *Sender) wake(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.waiting[j]; !ok {
		return // abort took it
	}
	delete(s.waiting, j)
	s.queue <- j // never blocks: the queue can hold every pending push
}

// end records the final result of a push that was sent (or logged) and
// lets it go.
func (s *Sender) end(j *job, result string) {
	s.m.pushes.WithLabelValues(string(j.n.Kind), result).Inc()
	s.report(j, result, true)
	s.release()
}

// giveUp ends a push that will not be sent (again): its deadline came or
// the Sender stopped. A push never tried is counted as dropped.
func (s *Sender) giveUp(j *job, why string) {
	log := s.logger(j)
	if why == "shutdown" {
		s.lost.Add(1)
	}
	// A push cut by shutdown is not over for the call: its wake stays
	// pending, and another process takes it over when the lease runs out.
	if j.attempts == 0 || why == "shutdown" {
		s.report(j, why, why != "shutdown")
	}
	if j.attempts == 0 {
		reason := why
		if why == "deadline" {
			reason = "expired"
		}
		log.Error("push not sent", "reason", reason)
		s.m.dropped.WithLabelValues(string(j.n.Kind), reason).Inc()
		s.release()
		return
	}
	log.Error("push given up", "reason", why, "attempts", j.attempts, "last_result", j.last.result, "error", j.last.describe(j.n.Token))
	if why == "shutdown" {
		s.m.pushes.WithLabelValues(string(j.n.Kind), why).Inc()
		s.release()
		return
	}
	s.end(j, why)
}

func (s *Sender) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending--
	if s.closed && s.pending == 0 {
		close(s.drained) // once: nothing is accepted after closed
	}
}

// logger is j's logger: the call and a token prefix, never the token.
func (s *Sender) logger(j *job) *slog.Logger {
	if j.log == nil {
		n := &j.n
		j.log = s.log.With("kind", n.Kind, "call_id", n.CallID, "account", n.Account, "device", n.DeviceID,
			"token", tokenPrefix(n.Token), "apns_id", n.ID)
	}
	return j.log
}

// answer is the result of one APNs request.
type answer struct {
	outcome outcome
	result  string // metric label: success, an APNs reason, or why no answer came
	status  int
	reason  string
	at      time.Time // 410: when APNs last found the token invalid
	err     error     // no answer: the request's error
	took    time.Duration
}

// describe is the answer for a log line. The request's URL holds the
// token: it is cut to its prefix.
func (a answer) describe(token string) string {
	switch {
	case a.err != nil:
		return redact(a.err.Error(), token)
	case a.reason != "":
		return fmt.Sprintf("APNs %d %s", a.status, a.reason)
	case a.status != 0:
		return fmt.Sprintf("APNs %d", a.status)
	}
	return a.result
}

// redact cuts every copy of token in s to its prefix.
func redact(s, token string) string {
	return strings.ReplaceAll(s, token, tokenPrefix(token))
}

// attempt sends j once, within its deadline and the request timeout.
func (s *Sender) attempt(c *client, j *job) answer {
	n := &j.n
	end := time.Now().Add(s.cfg.Timeout)
	if n.Deadline.Before(end) {
		end = n.Deadline // never an answer after the call
	}
	ctx, cancel := context.WithDeadline(s.stop, end)
	defer cancel()
	start := time.Now()
	var a answer
	select {
	case c.slots <- struct{}{}:
		s.inflight.Add(1)
		cut := s.holdWhileInFlight(ctx, cancel, j)
		res, err := c.apns.PushWithContext(ctx, n.apns())
		s.inflight.Add(-1)
		<-c.slots
		switch {
		case cut():
			a = answer{outcome: retryLater, result: "not_wanted", err: errors.New("no longer wanted while in flight")}
		case err != nil:
			a = s.noAnswer(err, n.Deadline)
		default:
			a = answer{
				outcome: classify(res.StatusCode, res.Reason),
				result:  resultLabel(res.StatusCode, res.Reason),
				status:  res.StatusCode,
				reason:  res.Reason,
				at:      res.Timestamp.Time,
			}
		}
	case <-ctx.Done():
		// Every stream of the connection stayed busy.
		a = s.noAnswer(fmt.Errorf("no free stream on the APNs connection: %w", ctx.Err()), n.Deadline)
	}
	a.took = time.Since(start)
	s.m.requests.WithLabelValues(string(n.Kind), a.result).Observe(a.took.Seconds())
	s.m.appRequests.WithLabelValues(n.BundleID, n.Environment, string(n.Kind), a.result).Inc()
	return a
}

// holdWhileInFlight asks j's Wanted each HoldEvery while its request is
// in flight (ctx ends with the attempt), cancelling the request once the
// push is no longer wanted. The function it returns, called after the
// request, reports whether it was cut so.
func (s *Sender) holdWhileInFlight(ctx context.Context, cancel context.CancelFunc, j *job) (cut func() bool) {
	if j.n.Wanted == nil || s.cfg.HoldEvery <= 0 {
		return func() bool { return false }
	}
	var (
		unwanted atomic.Bool
		mu       sync.Mutex // t, which its own function resets
		t        *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(s.cfg.HoldEvery, func() {
		if ctx.Err() != nil {
			return
		}
		if !s.wanted(j) {
			unwanted.Store(true)
			cancel()
			return
		}
		mu.Lock()
		t.Reset(s.cfg.HoldEvery)
		mu.Unlock()
	})
	return func() bool {
		mu.Lock()
		t.Stop()
		mu.Unlock()
		return unwanted.Load()
	}
}

// noAnswer reads a request that ended without an APNs answer.
func (s *Sender) noAnswer(err error, deadline time.Time) answer {
	a := answer{outcome: retryLater, err: err}
	switch {
	case s.stop.Err() != nil:
		a.result = "shutdown"
	case !time.Now().Before(deadline):
		a.result = "deadline"
	default:
		a.outcome, a.result = classifyErr(err)
	}
	return a
}

// removeToken hands a token APNs called dead back to sessions.
func (s *Sender) removeToken(j *job) {
	n, a := &j.n, j.last
	log := s.logger(j).With("result", a.result)
	if !a.at.IsZero() {
		log = log.With("invalid_since", a.at)
	}
	if s.feedback == nil || n.Account == "" || n.DeviceID == "" {
		s.m.removeFailures.Inc()
		log.Warn("APNs says the token is dead, but no device can be removed")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	removed, err := s.feedback.TokenDead(ctx, sessions.DeadToken{Account: n.Account, DeviceID: n.DeviceID, Token: n.Token, InvalidSince: a.at})
	if err != nil {
		s.m.removeFailures.Inc()
		log.Error("APNs says the token is dead, but it could not be removed", "error", redact(err.Error(), n.Token))
		return
	}
	if !removed {
		s.m.kept.Inc()
		log.Info("APNs says the token is dead, but the device registered it again since (or no longer has it): kept")
		return
	}
	s.m.removed.WithLabelValues(a.result).Inc()
	log.Info("APNs says the token is dead: removed it")
}

func (s *Sender) logDryRun(j *job) {
	n := &j.n
	exp := int64(0)
	if !n.Expiration.IsZero() {
		exp = n.Expiration.Unix()
	}
	s.logger(j).Info("push (dry run)",
		"apns_push_type", string(n.pushType()),
		"apns_topic", n.Topic(),
		"apns_priority", n.Priority(),
		"apns_expiration", exp,
		"apns_collapse_id", n.CollapseID,
		"environment", n.Environment,
		"payload", s.logPayload(n.Payload),
	)
}

// logPayload is a body as a log shows it: without what a message said or
// who sent it, unless Config.LogBodies asks for them.
func (s *Sender) logPayload(p []byte) string {
	if s.cfg.LogBodies {
		return string(p)
	}
	var b bodyJSON
	if err := json.Unmarshal(p, &b); err != nil || b.Message == nil {
		return string(p) // a call's push: nothing a user wrote
	}
	const hidden = "<not logged: apns.log_bodies>"
	b.Message = &messageJSON{Sender: hidden, Body: hidden}
	if b.APS.Alert != nil {
		b.APS.Alert = &alertJSON{Title: hidden, Body: hidden}
	}
	return string(encode(b))
}
