package main

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/viper"
)

// envPrefix starts every override: JINGLEPUSH_<SECTION>_<KEY>, the key upper
// case with "." as "_" (JINGLEPUSH_CALLS_RING_TIMEOUT), and for [[apns.apps]]
// JINGLEPUSH_APNS_APPS_<index>_<KEY> (JINGLEPUSH_APNS_APPS_0_KEY_FILE), where
// the index counts the file's entries from 0 and the next free index adds an
// entry.
//
// Which variables are config: those whose name continues after the prefix
// with a section name in upper case, alone or followed by "_"
// (JINGLEPUSH_XMPP_…, JINGLEPUSH_REDIS_…). Each of those must name a key, so
// a typo such as JINGLEPUSH_XMPP_SECRT is an error. Other JINGLEPUSH_ names
// (JINGLEPUSH_CONFIG, JINGLEPUSH_TEST_…) are not config and are left alone.
const envPrefix = "JINGLEPUSH_"

const envApps = "APNS_APPS"

// envName is the variable of a key, without envPrefix: "apns.apps[0].key_id"
// is APNS_APPS_0_KEY_ID.
func envName(key string) string { return strings.ToUpper(envReplacer.Replace(key)) }

var envReplacer = strings.NewReplacer(".", "_", "[", "_", "]", "")

// environment is the config variables of environ. Viper's own environment
// layer (BindEnv, AutomaticEnv) reads only the process environment, through
// os.LookupEnv, so each key's variable is looked up here and handed to viper
// as an override; strictHook parses it to the key's type.
type environment struct {
	vars    map[string]string // by name
	used    map[string]bool   // the variables that set a key
	appsLen int               // [[apns.apps]] entries after the variables
}

func newEnvironment(environ []string) *environment {
	e := &environment{vars: map[string]string{}, used: map[string]bool{}}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		rest, ours := strings.CutPrefix(name, envPrefix)
		section, _, _ := strings.Cut(rest, "_")
		if ok && ours && section == strings.ToUpper(section) && isSection(strings.ToLower(section)) {
			e.vars[name] = value
		}
	}
	return e
}

// envValue is a key's value as its variable gives it; strictHook parses it
// to the key's type. Messages name the variable, never quote its value: it
// may be a secret.
type envValue struct{ name, value string }

func (e envValue) parse(t reflect.Type) (any, error) {
	v, err := parseEnvValue(t, e.value)
	if err != nil {
		return nil, &problem{key: e.name, msg: err.Error(), stage: stageDecode}
	}
	return v, nil
}

// lookup finds the variable of key and marks it used.
func (e *environment) lookup(key string) (envValue, bool) {
	name := envPrefix + envName(key)
	value, ok := e.vars[name]
	if ok {
		e.used[name] = true
	}
	return envValue{name, value}, ok
}

// apply sets every key that has a variable, and reports the config
// variables that name no key.
func (e *environment) apply(v *viper.Viper) []error {
	for _, k := range fileKeys {
		if val, ok := e.lookup(k.name); ok {
			v.Set(k.name, val)
		}
	}
	e.applyApps(v)

	var errs []error
	for _, name := range slices.Sorted(maps.Keys(e.vars)) {
		if !e.used[name] {
			errs = append(errs, &problem{key: name, msg: e.unknown(name), stage: stageDecode})
		}
	}
	return errs
}

// applyApps sets the [[apns.apps]] variables. Viper holds a table array as
// one value, so they change a copy of the file's entries, which then
// replaces them. Entries that are not tables are left for decoding to
// report, and so is an apns.apps that is not an array.
func (e *environment) applyApps(v *viper.Viper) {
	file := v.Get("apns.apps")
	entries, isArray := file.([]any)
	entries = slices.Clone(entries)
	changed := false
	for i := 0; i <= len(entries); i++ {
		entry, isTable := map[string]any{}, true
		if i < len(entries) {
			var m map[string]any
			if m, isTable = entries[i].(map[string]any); isTable {
				entry = maps.Clone(m)
			}
		}
		set := false
		for _, k := range appKeys {
			if val, ok := e.lookup(fmt.Sprintf("apns.apps[%d].%s", i, k.name)); ok {
				entry[k.name], set = val, true
			}
		}
		switch {
		case !set || !isTable:
		case i == len(entries):
			entries = append(entries, entry)
		default:
			entries[i] = entry
		}
		changed = changed || set && isTable
	}
	e.appsLen = len(entries)
	if changed && (isArray || file == nil) {
		v.Set("apns.apps", entries)
	}
}

// unknown says why the config variable name sets nothing.
func (e *environment) unknown(name string) string {
	rest := strings.TrimPrefix(name, envPrefix)
	section, _, _ := strings.Cut(rest, "_")
	if rest == envApps {
		return "is not a config variable; set an app's keys as " + envPrefix + envApps + "_<index>_<KEY>"
	}
	if tail, ok := strings.CutPrefix(rest, envApps+"_"); ok {
		idx, field, _ := strings.Cut(tail, "_")
		i, err := strconv.Atoi(idx)
		if err == nil && i >= 0 && strconv.Itoa(i) == idx && slices.ContainsFunc(appKeys, func(k keyInfo) bool { return envName(k.name) == field }) {
			return fmt.Sprintf("index %d skips ahead: the next free [[apns.apps]] index is %d", i, e.appsLen)
		}
		return "is not a config variable; an app's keys are set as " + envPrefix + envApps + "_<index>_<KEY>, KEY one of " + envNames(appKeys)
	}
	var known []keyInfo
	for _, k := range fileKeys {
		if strings.HasPrefix(envName(k.name), section+"_") {
			known = append(known, k)
		}
	}
	return "is not a config variable; [" + strings.ToLower(section) + "] has " + envNames(known)
}

// envNames lists keys as their variables show them, without the section.
func envNames(keys []keyInfo) string {
	var names []string
	for _, k := range keys {
		_, n, ok := strings.Cut(k.name, ".")
		if !ok {
			n = k.name
		}
		names = append(names, strings.ToUpper(n))
	}
	return strings.Join(names, ", ")
}

// parseEnvValue converts a variable to the type of its key. Lists split on
// commas and white space. The value is never quoted back: it may be a secret.
func parseEnvValue(t reflect.Type, s string) (any, error) {
	switch {
	case t == durationType:
		return parseDuration(s)
	case t.Kind() == reflect.String:
		return s, nil
	case t.Kind() == reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("must be %s", describeType(t))
		}
		return n, nil
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("must be %s", describeType(t))
		}
		return b, nil
	case t.Kind() == reflect.Slice:
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }), nil
	}
	return nil, fmt.Errorf("cannot be set from the environment")
}

// annotate names the variable a value came from: "redis.db (JINGLEPUSH_REDIS_DB)".
// A list's element takes its list's variable (redis.addrs[1]).
func (p *problem) annotate(e *environment) {
	for key := p.key; ; {
		if name := envPrefix + envName(key); e.used[name] {
			p.key += " (" + name + ")"
			return
		}
		i := strings.LastIndexByte(key, '[')
		if i <= 0 || !strings.HasSuffix(key, "]") {
			return
		}
		key = key[:i]
	}
}
