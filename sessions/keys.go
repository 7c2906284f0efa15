package sessions

import "strings"

// keys builds every Redis key jinglepush uses. Keys of one account share the
// hash tag {account}; the two global keys (node index, timers) are only used
// by single-key commands.
type keys struct {
	prefix string
}

func (k keys) account(account, name string) string {
	var b strings.Builder
	b.Grow(len(k.prefix) + len(account) + len(name) + 3)
	b.WriteString(k.prefix)
	b.WriteByte('{')
	b.WriteString(account)
	b.WriteString("}:")
	b.WriteString(name)
	return b.String()
}

func (k keys) devices(account string) string   { return k.account(account, "devices") }
func (k keys) presence(account string) string  { return k.account(account, "presence") }
func (k keys) published(account string) string { return k.account(account, "published") }
func (k keys) pending(account string) string   { return k.account(account, "pending") }
func (k keys) ringing(account string) string   { return k.account(account, "ringing") }
func (k keys) lastCall(account string) string  { return k.account(account, "lastcall") }

// call and woken name one call by its ref, "<caller>/<id>".
func (k keys) call(account, ref string) string  { return k.account(account, "call:"+ref) }
func (k keys) woken(account, ref string) string { return k.account(account, "woken:"+ref) }

func (k keys) node(node string) string { return k.prefix + "node:" + node }
func (k keys) timers() string          { return k.prefix + "timers" }

// callRef names a call within its account: the caller's bare JID and the
// call id, which together identify a call (DESIGN.md section 4).
func callRef(caller, id string) string { return caller + "/" + id }

// splitRef undoes callRef. Bare JIDs hold no '/', so the first one splits.
func splitRef(ref string) (caller, id string, ok bool) {
	return strings.Cut(ref, "/")
}
