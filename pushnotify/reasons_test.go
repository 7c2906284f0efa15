package pushnotify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"testing"

	"github.com/sideshow/apns2"
)

// Every reason Apple documents, with what the issue asks of it.
func TestClassifyEveryReason(t *testing.T) {
	want := map[string]outcome{
		apns2.ReasonUnregistered:           deadToken,
		apns2.ReasonExpiredToken:           deadToken,
		apns2.ReasonBadDeviceToken:         deadToken,
		apns2.ReasonDeviceTokenNotForTopic: deadToken,

		apns2.ReasonTopicDisallowed:           operatorErr,
		apns2.ReasonBadTopic:                  operatorErr,
		apns2.ReasonMissingTopic:              operatorErr,
		apns2.ReasonBadCertificate:            operatorErr,
		apns2.ReasonBadCertificateEnvironment: operatorErr,
		apns2.ReasonForbidden:                 operatorErr,
		apns2.ReasonInvalidProviderToken:      operatorErr,
		apns2.ReasonMissingProviderToken:      operatorErr,
		apns2.ReasonBadPath:                   operatorErr,

		apns2.ReasonExpiredProviderToken:        refreshRetry,
		apns2.ReasonTooManyProviderTokenUpdates: retryLater,
		apns2.ReasonTooManyRequests:             retryLater,
		apns2.ReasonIdleTimeout:                 retryLater,
		apns2.ReasonInternalServerError:         retryLater,
		apns2.ReasonServiceUnavailable:          retryLater,
		apns2.ReasonShutdown:                    retryLater,

		apns2.ReasonBadCollapseID:      failOnce,
		apns2.ReasonBadExpirationDate:  failOnce,
		apns2.ReasonBadMessageID:       failOnce,
		apns2.ReasonBadPriority:        failOnce,
		apns2.ReasonDuplicateHeaders:   failOnce,
		apns2.ReasonInvalidPushType:    failOnce,
		apns2.ReasonMissingDeviceToken: failOnce,
		apns2.ReasonPayloadEmpty:       failOnce,
		apns2.ReasonPayloadTooLarge:    failOnce,
		apns2.ReasonMethodNotAllowed:   failOnce,
	}
	if len(want) != len(reasons) {
		t.Errorf("the table has %d reasons, the test %d", len(reasons), len(want))
	}
	for reason, o := range want {
		if got := classify(400, reason); got != o {
			t.Errorf("%s: %v, want %v", reason, got, o)
		}
		if got := resultLabel(400, reason); got != reason {
			t.Errorf("%s: label %q", reason, got)
		}
	}

	// Answers without a known reason fall back on their status.
	for _, c := range []struct {
		status int
		want   outcome
		label  string
	}{
		{200, sent, "success"},
		{410, deadToken, "http_4xx"},
		{429, retryLater, "http_4xx"},
		{500, retryLater, "http_5xx"},
		{502, retryLater, "http_5xx"},
		{403, operatorErr, "http_4xx"},
		{400, failOnce, "http_4xx"},
		{404, failOnce, "http_4xx"},
		{302, failOnce, "http_other"},
	} {
		if got := classify(c.status, "NewReason"); got != c.want {
			t.Errorf("%d: %v, want %v", c.status, got, c.want)
		}
		if got := resultLabel(c.status, "NewReason"); got != c.label {
			t.Errorf("%d: label %q, want %q", c.status, got, c.label)
		}
	}
}

// Errors without an APNs answer: TLS trouble is the operator's, the rest
// is the network's.
func TestClassifyErr(t *testing.T) {
	wrap := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://api.push.apple.com/3/device/x", Err: err}
	}
	for _, c := range []struct {
		err   error
		want  outcome
		label string
	}{
		{wrap(x509.UnknownAuthorityError{}), operatorErr, "tls"},
		{wrap(fmt.Errorf("tls: failed to verify certificate: %w", x509.HostnameError{Host: "x"})), operatorErr, "tls"},
		{wrap(&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}), operatorErr, "tls"},
		{wrap(context.DeadlineExceeded), retryLater, "timeout"},
		{wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), retryLater, "network"},
		{wrap(errors.New("http2: server sent GOAWAY and closed the connection")), retryLater, "network"},
	} {
		o, label := classifyErr(c.err)
		if o != c.want || label != c.label {
			t.Errorf("%v: %v %q, want %v %q", c.err, o, label, c.want, c.label)
		}
	}
}
