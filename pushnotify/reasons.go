package pushnotify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
)

// outcome is what jinglepush does with one APNs answer.
type outcome int

const (
	sent         outcome = iota
	deadToken            // remove the token from sessions, never retry
	operatorErr          // a configuration mistake: log loudly, mark the app unhealthy, keep the token
	retryLater           // back off and try again until the push's deadline
	refreshRetry         // the JWT is stale: refresh it, then retry
	failOnce             // a request this push can never get right: log, give up
)

func (o outcome) String() string {
	switch o {
	case sent:
		return "sent"
	case deadToken:
		return "dead-token"
	case operatorErr:
		return "operator-error"
	case retryLater:
		return "retry"
	case refreshRetry:
		return "refresh-retry"
	}
	return "failed"
}

// reasons maps every reason Apple documents to what it means for us; see
// "Handling notification responses from APNs" and docs/apns.md, which
// repeats this table for operators.
var reasons = map[string]outcome{
	// The token is dead for this topic: the app was removed, the user turned
	// pushes off, or the token belongs to the other environment.
	"Unregistered":           deadToken,
	"ExpiredToken":           deadToken,
	"BadDeviceToken":         deadToken,
	"DeviceTokenNotForTopic": deadToken,

	// The operator's credentials, topics or endpoint are wrong: no device
	// is at fault, and every push of the app fails the same way.
	"TopicDisallowed":           operatorErr,
	"BadTopic":                  operatorErr,
	"MissingTopic":              operatorErr,
	"BadCertificate":            operatorErr,
	"BadCertificateEnvironment": operatorErr,
	"Forbidden":                 operatorErr,
	"InvalidProviderToken":      operatorErr,
	"MissingProviderToken":      operatorErr,
	"BadPath":                   operatorErr,

	// Try again.
	"ExpiredProviderToken":        refreshRetry,
	"TooManyProviderTokenUpdates": retryLater,
	"TooManyRequests":             retryLater,
	"IdleTimeout":                 retryLater,
	"InternalServerError":         retryLater,
	"ServiceUnavailable":          retryLater,
	"Shutdown":                    retryLater,

	// The request itself is wrong; sending it again changes nothing.
	"BadCollapseId":      failOnce,
	"BadExpirationDate":  failOnce,
	"BadMessageId":       failOnce,
	"BadPriority":        failOnce,
	"DuplicateHeaders":   failOnce,
	"InvalidPushType":    failOnce,
	"MissingDeviceToken": failOnce,
	"PayloadEmpty":       failOnce,
	"PayloadTooLarge":    failOnce,
	"MethodNotAllowed":   failOnce,
}

// classify reads one APNs answer. Reasons come first; a status Apple may
// send without a known reason falls back on its class.
func classify(status int, reason string) outcome {
	if status == http.StatusOK {
		return sent
	}
	if o, ok := reasons[reason]; ok {
		return o
	}
	switch {
	case status == http.StatusGone:
		return deadToken
	case status == http.StatusTooManyRequests, status >= 500:
		return retryLater
	case status == http.StatusForbidden:
		return operatorErr
	}
	return failOnce
}

// resultLabel is the bounded "result" metric label of an answer: the reason
// when Apple gave a known one, else a status class.
func resultLabel(status int, reason string) string {
	if status == http.StatusOK {
		return "success"
	}
	if _, ok := reasons[reason]; ok {
		return reason
	}
	switch {
	case status >= 500:
		return "http_5xx"
	case status >= 400:
		return "http_4xx"
	}
	return "http_other"
}

// classifyErr reads a request that got no APNs answer. TLS failures are the
// operator's: APNs's certificate is not trusted (apns.ca_file, endpoint) or
// APNs refused ours (expired, revoked, not a push certificate), and a retry
// would meet the same wall. Anything else is the network: retry.
func classifyErr(err error) (outcome, string) {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
		op      *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid),
		errors.As(err, &record):
		return operatorErr, "tls"
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports an alert from the peer this way.
		return operatorErr, "tls"
	case errors.Is(err, context.DeadlineExceeded):
		return retryLater, "timeout"
	}
	return retryLater, "network"
}
