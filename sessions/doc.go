// Package sessions holds jinglepush's shared state in Redis: the devices
// registered by each account, the presence of their resources, and every
// pending call with its state machine (ringing → answered, declined,
// cancelled or missed).
//
// All keys of one account carry the account as a Redis Cluster hash tag, so
// the Lua scripts that decide a call run atomically on one slot. Those
// scripts are what make "exactly one VoIP push per device and call" hold
// across duplicate copies, several component processes and restarts.
//
// Service turns the call and push events parsed by package jingle into state
// changes and hands the pushes they call for to a Pusher (package
// pushnotify). The component package feeds it; it never touches XML.
package sessions
