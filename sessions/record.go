package sessions

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// An account's devices are one field of a shared hash (keys.go), holding a
// MessagePack array of device records, each itself an array:
//
//	[1, id, voip, token, bundle, environment, node, secret, registered, resource]
//
// Tokens, node and secret are raw bytes (half of their hex or base64), the
// registration time unix seconds, the environment one letter. That is what
// keeps a registered device near 300 bytes of Redis memory at a million
// devices (docs/performance.md). The Lua scripts read and write the same
// arrays with Redis's built-in cmsgpack (lua/device.lua); this file is the
// Go side, which needs only arrays, strings and small integers.

const recordVersion = 1

// Field positions of a device record (1-based in Lua: add one).
const (
	recVersion = iota
	recID
	recVoIP
	recToken
	recBundle
	recEnv
	recNode
	recSecret
	recRegistered
	recResource
	recFields
)

var errRecord = errors.New("sessions: bad device record")

// encodeDevices encodes an account's devices for its hash field.
func encodeDevices(ds []Device) ([]byte, error) {
	b := appendArrayHeader(nil, len(ds))
	for _, d := range ds {
		var err error
		if b, err = appendDevice(b, d); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// encodeDevice encodes one device record (register.lua merges it into the
// account's list).
func encodeDevice(d Device) ([]byte, error) { return appendDevice(nil, d) }

func appendDevice(b []byte, d Device) ([]byte, error) {
	voip, err := hex.DecodeString(d.VoIPToken)
	if err != nil {
		return nil, fmt.Errorf("sessions: voip token: %w", err)
	}
	tok, err := hex.DecodeString(d.Token)
	if err != nil {
		return nil, fmt.Errorf("sessions: token: %w", err)
	}
	node, err := nodeRandom(d.Node)
	if err != nil {
		return nil, err
	}
	secret, err := base64.RawURLEncoding.DecodeString(d.Secret)
	if err != nil {
		return nil, fmt.Errorf("sessions: secret: %w", err)
	}
	var reg int64
	if d.Registered != "" {
		t, err := time.Parse(time.RFC3339, d.Registered)
		if err != nil {
			return nil, fmt.Errorf("sessions: registered: %w", err)
		}
		reg = t.Unix()
	}
	b = appendArrayHeader(b, recFields)
	b = appendInt(b, recordVersion)
	b = appendStr(b, d.ID)
	b = appendStr(b, string(voip))
	b = appendStr(b, string(tok))
	b = appendStr(b, d.BundleID)
	b = appendStr(b, envLetter(d.Environment))
	b = appendStr(b, string(node))
	b = appendStr(b, string(secret))
	b = appendInt(b, reg)
	b = appendStr(b, d.Resource)
	return b, nil
}

// decodeDevices decodes an account's hash field. Records it cannot read
// are skipped: one damaged record must not stop a call to the others.
func decodeDevices(account string, raw []byte) ([]Device, error) {
	r := msgReader{b: raw}
	n, ok := r.arrayHeader()
	if !ok {
		return nil, errRecord
	}
	out := make([]Device, 0, n)
	for range n {
		d, err := r.device(account)
		if err != nil {
			if r.err {
				return out, errRecord
			}
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// decodeDevice decodes one device record.
func decodeDevice(account string, raw []byte) (Device, error) {
	r := msgReader{b: raw}
	return r.device(account)
}

func (r *msgReader) device(account string) (Device, error) {
	n, ok := r.arrayHeader()
	if !ok {
		return Device{}, errRecord
	}
	vals := make([]msgValue, n)
	for i := range n {
		if vals[i], ok = r.value(); !ok {
			return Device{}, errRecord
		}
	}
	if n < recFields || vals[recVersion].i != recordVersion || vals[recID].s == "" {
		return Device{}, errRecord // a later version: this process cannot read it
	}
	d := Device{
		ID:          vals[recID].s,
		VoIPToken:   hex.EncodeToString([]byte(vals[recVoIP].s)),
		Token:       hex.EncodeToString([]byte(vals[recToken].s)),
		BundleID:    vals[recBundle].s,
		Environment: envName(vals[recEnv].s),
		Secret:      base64.RawURLEncoding.EncodeToString([]byte(vals[recSecret].s)),
		Resource:    vals[recResource].s,
	}
	if node := vals[recNode].s; node != "" {
		d.Node = makeNode(account, []byte(node))
	}
	if reg := vals[recRegistered].i; reg > 0 {
		d.Registered = time.Unix(reg, 0).UTC().Format(time.RFC3339)
	}
	return d, nil
}

func envLetter(env string) string {
	if env == "sandbox" {
		return "s"
	}
	return "p"
}

func envName(l string) string {
	if l == "s" {
		return "sandbox"
	}
	return "production"
}

// A XEP-0357 node names its account, so that a publish finds the device
// without an index: base64url(account) "." base64url(random). The secret,
// not the node, is what only the app and its server know.
func makeNode(account string, random []byte) string {
	return base64.RawURLEncoding.EncodeToString([]byte(account)) + "." + base64.RawURLEncoding.EncodeToString(random)
}

// parseNode returns the account a node names, and its random part.
func parseNode(node string) (account string, random []byte, ok bool) {
	a, r, found := strings.Cut(node, ".")
	if !found || a == "" || r == "" || len(node) > 4200 {
		return "", nil, false
	}
	acct, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil {
		return "", nil, false
	}
	random, err = base64.RawURLEncoding.DecodeString(r)
	if err != nil {
		return "", nil, false
	}
	return string(acct), random, true
}

func nodeRandom(node string) ([]byte, error) {
	if node == "" {
		return nil, nil
	}
	_, random, ok := parseNode(node)
	if !ok {
		return nil, fmt.Errorf("sessions: node %q is not one of ours", node)
	}
	return random, nil
}

// ---- the MessagePack subset (https://github.com/msgpack/msgpack/blob/master/spec.md)

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0 && v < 128:
		return append(b, byte(v))
	case v >= 0 && v < 1<<32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

type msgValue struct {
	s string
	i int64
}

// msgReader reads what cmsgpack writes for arrays of strings and numbers:
// Lua numbers come back as integers of any width (or doubles, read whole),
// strings as str or bin, nil as nil. Anything else sets err.
type msgReader struct {
	b   []byte
	err bool
}

func (r *msgReader) byte() (byte, bool) {
	if len(r.b) == 0 {
		r.err = true
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *msgReader) take(n int) ([]byte, bool) {
	if n < 0 || len(r.b) < n {
		r.err = true
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

func (r *msgReader) uint(n int) (uint64, bool) {
	v, ok := r.take(n)
	if !ok {
		return 0, false
	}
	var u uint64
	for _, c := range v {
		u = u<<8 | uint64(c)
	}
	return u, true
}

func (r *msgReader) arrayHeader() (int, bool) {
	c, ok := r.byte()
	if !ok {
		return 0, false
	}
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), true
	case c == 0xdc:
		n, ok := r.uint(2)
		return int(n), ok
	case c == 0xdd:
		n, ok := r.uint(4)
		return int(n), ok && n < 1<<20
	}
	r.err = true
	return 0, false
}

func (r *msgReader) value() (msgValue, bool) {
	c, ok := r.byte()
	if !ok {
		return msgValue{}, false
	}
	str := func(n uint64, ok bool) (msgValue, bool) {
		if !ok {
			return msgValue{}, false
		}
		v, ok := r.take(int(n))
		return msgValue{s: string(v)}, ok
	}
	num := func(n int, signed bool) (msgValue, bool) {
		u, ok := r.uint(n)
		if !ok {
			return msgValue{}, false
		}
		if signed {
			shift := 64 - 8*n
			return msgValue{i: int64(u<<shift) >> shift}, true
		}
		return msgValue{i: int64(u)}, true
	}
	switch {
	case c < 0x80:
		return msgValue{i: int64(c)}, true
	case c >= 0xe0:
		return msgValue{i: int64(int8(c))}, true
	case c&0xe0 == 0xa0:
		return str(uint64(c&0x1f), true)
	case c == 0xc0:
		return msgValue{}, true
	case c == 0xd9 || c == 0xc4:
		return str(r.uint(1))
	case c == 0xda || c == 0xc5:
		return str(r.uint(2))
	case c == 0xdb || c == 0xc6:
		return str(r.uint(4))
	case c >= 0xcc && c <= 0xcf:
		return num(1<<(c-0xcc), false)
	case c >= 0xd0 && c <= 0xd3:
		return num(1<<(c-0xd0), true)
	case c == 0xcb:
		// cmsgpack writes a Lua number that is not an integer as a double;
		// the scripts only store whole numbers, but read one whole anyway.
		u, ok := r.uint(8)
		if !ok {
			return msgValue{}, false
		}
		f := math.Float64frombits(u)
		return msgValue{i: int64(f), s: strconv.FormatFloat(f, 'f', -1, 64)}, true
	}
	r.err = true
	return msgValue{}, false
}
