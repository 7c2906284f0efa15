package jingle

import (
	"bytes"
	"strings"
)

// Redacted is what Redact puts in the place of a secret.
const Redacted = "[redacted]"

// Redact returns raw with its secrets replaced by Redacted, for logs: the
// values of data form fields whose var names a secret (in any case:
// "password", or ending in "token", "secret" or "password", such as
// voip-token, token, device_token, secret: the registration's fields and
// XEP-0357 publish-options) and the key in a Tigase <encrypt/> (a XEP-0357
// enable). It looks at bytes only, so it never fails; on broken XML it hides
// everything after a secret that does not end. It returns raw itself, not a
// copy, when there is nothing to hide.
func Redact(raw []byte) []byte {
	r := redactor{raw: raw}
	for i := 0; i >= 0; {
		if i = r.markup(i); i < 0 {
			break
		}
		name, end, empty := r.tag(i)
		switch {
		case end < 0 || empty:
		case localName(name) == "field" && secretField(r.attr(i+len(name), end, "var")):
			end = r.field(end)
		case localName(name) == "encrypt":
			end = r.hide(end, name)
		}
		i = end
	}
	if r.out == nil {
		return raw
	}
	return append(r.out, raw[r.last:]...)
}

// redactor builds the redacted copy, once there is something to hide.
type redactor struct {
	raw  []byte
	out  []byte // nil while nothing is hidden
	last int    // raw[last:] is not in out yet
}

// markup returns the index after the '<' of the next tag at or after i,
// passing over CDATA sections, comments and processing instructions, or -1.
func (r *redactor) markup(i int) int {
	for {
		lt := bytes.IndexByte(r.raw[i:], '<')
		if lt < 0 {
			return -1
		}
		i += lt + 1
		skip := ""
		switch rest := r.raw[i:]; {
		case bytes.HasPrefix(rest, []byte("![CDATA[")):
			skip = "]]>"
		case bytes.HasPrefix(rest, []byte("!--")):
			skip = "-->"
		case bytes.HasPrefix(rest, []byte("?")):
			skip = "?>"
		default:
			return i
		}
		k := bytes.Index(r.raw[i:], []byte(skip))
		if k < 0 {
			return -1
		}
		i += k + len(skip)
	}
}

// tag reads the tag that starts at i (after its '<'): its name ("/name" for
// an end tag), the index after its '>' (-1 when there is none), and whether
// it has no content (an end tag or a self-closing one).
func (r *redactor) tag(i int) (name []byte, end int, empty bool) {
	raw := r.raw
	j := i
	if j < len(raw) && raw[j] == '/' {
		j++
	}
	for j < len(raw) && !isSpaceByte(raw[j]) && raw[j] != '>' && raw[j] != '/' {
		j++
	}
	name = raw[i:j]
	var quote byte
	for ; j < len(raw); j++ {
		switch c := raw[j]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return name, j + 1, isEnd(name) || raw[j-1] == '/'
		}
	}
	return name, -1, false
}

// attr returns the value of the attribute called name among the
// attributes in raw[i:end], or "".
func (r *redactor) attr(i, end int, name string) string {
	attrs := r.raw[i:end]
	for {
		attrs = bytes.TrimLeft(attrs, " \t\r\n")
		eq := bytes.IndexByte(attrs, '=')
		if eq < 0 {
			return ""
		}
		key := bytes.TrimRight(attrs[:eq], " \t\r\n")
		attrs = bytes.TrimLeft(attrs[eq+1:], " \t\r\n")
		if len(attrs) == 0 || attrs[0] != '\'' && attrs[0] != '"' {
			return ""
		}
		n := bytes.IndexByte(attrs[1:], attrs[0])
		if n < 0 {
			return ""
		}
		if string(key) == name {
			return string(attrs[1 : 1+n])
		}
		attrs = attrs[n+2:]
	}
}

// field hides the values of the field whose start tag ends at i, and
// returns where the field ends (-1: at the end of the input; if the field
// does not end, what follows its last whole child is hidden).
func (r *redactor) field(i int) int {
	for {
		j := r.markup(i)
		if j < 0 {
			return r.hideRest(i)
		}
		name, end, empty := r.tag(j)
		switch {
		case end < 0:
			return r.hideRest(i)
		case isEnd(name) && localName(name[1:]) == "field":
			return end
		case !empty && localName(name) == "value":
			end = r.hide(end, name)
		}
		if end < 0 {
			return -1
		}
		i = end
	}
}

// hideRest hides the input from i, which is not hidden yet.
func (r *redactor) hideRest(i int) int {
	if i < len(r.raw) {
		r.out = append(r.out, r.raw[r.last:i]...)
		r.out = append(r.out, Redacted...)
		r.last = len(r.raw)
	}
	return -1
}

// hide replaces the content of the element called name, whose start tag
// ends at i, with Redacted and returns the index after its end tag (-1: the
// rest of the input is hidden).
func (r *redactor) hide(i int, name []byte) int {
	r.out = append(r.out, r.raw[r.last:i]...)
	r.out = append(r.out, Redacted...)
	r.last = len(r.raw)
	for j := i; ; {
		if j = r.markup(j); j < 0 {
			return -1
		}
		tag, end, _ := r.tag(j)
		if end < 0 {
			return -1
		}
		if isEnd(tag) && bytes.Equal(tag[1:], name) {
			r.last = j - 1
			return end
		}
		j = end
	}
}

// isEnd reports whether the tag name read by tag is an end tag's.
func isEnd(name []byte) bool { return len(name) > 0 && name[0] == '/' }

// localName returns name without its prefix.
func localName(name []byte) string {
	if c := bytes.LastIndexByte(name, ':'); c >= 0 {
		name = name[c+1:]
	}
	return string(name)
}

// secretField reports whether a form field called v holds a secret.
func secretField(v string) bool {
	v = strings.ToLower(v)
	return v == "password" || strings.HasSuffix(v, "token") || strings.HasSuffix(v, "secret") ||
		strings.HasSuffix(v, "password")
}
