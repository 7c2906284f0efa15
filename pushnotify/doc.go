// Package pushnotify sends jinglepush's Apple push notifications: PushKit
// VoIP pushes for ringing calls, alert pushes for missed calls and messages,
// and background pushes that end a ringing screen. It owns every APNs
// request: the JSON bodies (under Apple's size limits), the headers, one
// HTTP/2 client per app and environment with token (.p8, one shared JWT per
// signing key) or certificate (.p12, .pem) auth, a bounded queue served by a
// fixed number of senders, and what each APNs answer means (reasons.go): a
// dead token is handed back for removal, an operator mistake marks the app
// unhealthy, a passing failure is retried.
//
// A retry waits on a timer, not in a sender, with exponential backoff and
// jitter, and never past the push's deadline: no attempt starts after it and
// a request in flight is cut at it, so a call push never arrives after the
// call. Every retry of a push carries the same apns-id. docs/apns.md is the
// operator's side of all this.
package pushnotify
