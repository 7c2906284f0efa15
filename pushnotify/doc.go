// Package pushnotify sends jinglepush's Apple push notifications: PushKit
// VoIP pushes for ringing calls, alert pushes for missed calls and messages,
// and background pushes that end a ringing screen. It owns every APNs
// request: the JSON bodies (under Apple's size limits), the headers, one
// HTTP/2 client per app and environment, a bounded queue served by a fixed
// number of senders, retries with backoff bounded by each push's deadline,
// and what each APNs answer means (a dead token is handed back for removal,
// an operator mistake marks the app unhealthy).
package pushnotify
