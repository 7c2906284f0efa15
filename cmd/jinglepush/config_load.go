package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/viper"

	"github.com/jinglepush/jinglepush/pushnotify"
)

// Load reads the TOML file at path (none when path is ""), applies the
// JINGLEPUSH_* variables of environ (os.Environ() in main, a literal slice in
// tests: the process environment is never read here), reads the *_file
// secrets and validates the result. The error lists every problem at once,
// one per line, each naming its key or variable; it never holds a secret.
func Load(path string, environ []string) (Config, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
	}
	return load(path, data, environ)
}

// load is Load on file contents already read; name is the file's path, for
// messages and for resolving relative paths.
//
// Viper layers the sources: a default for every key, the file, then the
// environment as overrides. mapstructure decodes the result strictly
// (UnmarshalExact, no weak typing) through strictHook, the one place that
// checks types, and names the key of each value that does not fit.
func load(name string, data []byte, environ []string) (Config, error) {
	v := viper.New()
	walkKeys(reflect.ValueOf(defaults()), "", func(key string, f reflect.Value) {
		v.SetDefault(key, f.Interface())
	})

	doc, errs := parseTOML(name, data)
	var keys keyCheck
	if doc != nil {
		keys.table(doc, reflect.TypeFor[Config](), "")
		errs = append(errs, keys.errs...)
		_ = v.MergeConfigMap(doc) // never fails
	}
	env := newEnvironment(environ)
	errs = append(errs, env.apply(v)...)
	if doc == nil {
		// Without the file the rest would only report its absence.
		return Config{}, errors.Join(errs...)
	}

	var c Config
	decodeErrs, failed := decodeProblems(v.UnmarshalExact(&c, func(dc *mapstructure.DecoderConfig) {
		dc.WeaklyTypedInput = false // a file's "8" is not 8
		dc.DecodeHook = strictHook
	}))
	errs = append(errs, decodeErrs...)
	failed = append(failed, keys.failed...)

	c.normalize(filepath.Dir(name))
	for _, e := range c.check() {
		// A key that failed to decode holds a zero value: saying that it,
		// or a check that names it, is out of range would be noise.
		p := e.(*problem)
		if !slices.ContainsFunc(failed, func(f string) bool { return related(p.key, f) || mentions(p.msg, f) }) {
			errs = append(errs, p)
		}
	}
	errs = append(errs, c.readSecretFiles()...)

	if len(errs) > 0 {
		for _, e := range errs {
			if p, ok := e.(*problem); ok {
				p.annotate(env)
			}
		}
		slices.SortStableFunc(errs, func(a, b error) int { return sectionRank(a) - sectionRank(b) })
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// ---- the file

func parseTOML(name string, data []byte) (map[string]any, []error) {
	doc := map[string]any{}
	err := toml.Unmarshal(data, &doc)
	if err == nil {
		return doc, nil
	}
	if name == "" {
		name = "config"
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		// Error() is one line and quotes at most one character of the
		// document; String() would show whole lines, secrets included.
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return nil, []error{&problem{key: fmt.Sprintf("%s:%d:%d", name, row, col), msg: msg, stage: stageParse}}
	}
	return nil, []error{&problem{key: name, msg: err.Error(), stage: stageParse}}
}

// keyCheck reads the file as parsed, before viper, which would hide these
// mistakes from mapstructure's ErrorUnused and strictHook: it folds case
// ("Domain" would set domain), splits quoted dotted keys into tables, drops
// empty tables, and lets a variable for a key inside hide a section that is
// not a table. It reports and removes from the document every key that its
// struct does not have, and every section that is not a table. Other values
// are left for strictHook.
type keyCheck struct {
	errs   []error
	failed []string // sections that are not tables
}

func (kc *keyCheck) table(doc map[string]any, t reflect.Type, prefix string) {
	known := fields(t)
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		key := joinKey(prefix, k)
		i := slices.IndexFunc(known, func(f keyInfo) bool { return f.name == k })
		switch {
		case k != strings.ToLower(k):
			kc.add(key, "unknown key (keys are lower case)")
		case strings.Contains(k, "."):
			kc.add(strconv.Quote(key), `unknown key (a key holds no ".": write a [section])`)
		case i < 0:
			kc.errs = append(kc.errs, unknownKey(key, prefix, t, known))
		case known[i].typ.Kind() == reflect.Struct && !isTable(doc[k]):
			kc.add(key, "must be a table, not "+describeValue(doc[k]))
			kc.failed = append(kc.failed, key)
		default:
			ft := known[i].typ
			if ft.Kind() == reflect.Struct {
				kc.table(doc[k].(map[string]any), ft, key)
			}
			if entries, ok := doc[k].([]any); ok && ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				for j, entry := range entries {
					if table, ok := entry.(map[string]any); ok {
						kc.table(table, ft.Elem(), fmt.Sprintf("%s[%d]", key, j))
					}
				}
			}
			continue
		}
		delete(doc, k)
	}
}

func (kc *keyCheck) add(key, msg string) {
	kc.errs = append(kc.errs, &problem{key: key, msg: msg, stage: stageDecode})
}

func isTable(v any) bool { _, ok := v.(map[string]any); return ok }

// unknownKey names the key and the keys its table does have.
func unknownKey(key, table string, t reflect.Type, known []keyInfo) error {
	has := strings.Join(names(known), ", ")
	msg := "unknown key; [" + table + "] has " + has
	switch {
	case table == "":
		msg = "unknown section; the sections are " + has
	case t == reflect.TypeFor[AppConfig]():
		msg = "unknown key; an [[apns.apps]] entry has " + has
	}
	return &problem{key: key, msg: msg, stage: stageDecode}
}

// ---- types

var durationType = reflect.TypeFor[time.Duration]()

// strictHook checks every value's type before mapstructure sees it, so that
// each mistake reads the same way ("must be a whole number, not a string")
// and durations are Go duration strings, never nanoseconds. mapstructure's
// own checks would let 2.5 be 2 and 45 be 45ns, and word each differently.
// Values from the environment are strings parsed to their key's type here.
func strictHook(from, to reflect.Type, data any) (any, error) {
	if e, ok := data.(envValue); ok {
		return e.parse(to)
	}
	if to == durationType {
		switch d := data.(type) {
		case time.Duration: // a default
			return d, nil
		case string:
			return parseDuration(d)
		case int64:
			if d == 0 { // keepalive = 0 reads naturally as "off"
				return time.Duration(0), nil
			}
		}
		return nil, fmt.Errorf("must be %s, not %s", describeType(to), describeValue(data))
	}
	ok := true
	switch to.Kind() {
	case reflect.String:
		ok = from.Kind() == reflect.String
	case reflect.Int:
		ok = slices.Contains([]reflect.Kind{reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64}, from.Kind())
	case reflect.Bool:
		ok = from.Kind() == reflect.Bool
	case reflect.Slice:
		ok = from.Kind() == reflect.Slice || from.Kind() == reflect.Array
	case reflect.Struct:
		ok = from.Kind() == reflect.Map || from.Kind() == reflect.Struct
	}
	if !ok {
		return nil, fmt.Errorf("must be %s, not %s", describeType(to), describeValue(data))
	}
	return data, nil
}

var errNegative = errors.New("must not be negative")

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("must be %s", describeType(durationType))
	}
	if d < 0 {
		return 0, errNegative
	}
	return d, nil
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration such as "45s" or "500ms"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "an array of tables"
	case t.Kind() == reflect.Slice:
		return `an array of strings such as ["a", "b"]`
	case t.Kind() == reflect.Struct:
		return "a table"
	}
	return t.String()
}

// describeValue names the TOML type of a decoded value (never the value).
func describeValue(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "a whole number"
	case float64:
		return "a fractional number"
	case bool:
		return "true or false"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalTime, toml.LocalDateTime:
		return "a date or time"
	}
	return fmt.Sprintf("%T", v)
}

// decodeProblems turns the decoder's errors into problems, and lists the
// keys whose values did not decode. Each *mapstructure.DecodeError names its
// key; what strictHook says of an environment value is a problem already.
func decodeProblems(err error) (errs []error, failed []string) {
	for _, e := range leaves(err) {
		de, ok := e.(*mapstructure.DecodeError)
		if !ok {
			errs = append(errs, &problem{key: "config", msg: e.Error(), stage: stageDecode})
			continue
		}
		failed = append(failed, de.Name())
		var p *problem
		if !errors.As(de, &p) {
			p = &problem{key: de.Name(), msg: de.Unwrap().Error(), stage: stageDecode}
		}
		errs = append(errs, p)
	}
	return errs, failed
}

// leaves flattens a tree of wrapped and joined errors, stopping at
// mapstructure's per-key errors and at problems.
func leaves(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case *mapstructure.DecodeError, *problem:
		return []error{e}
	case interface{ Unwrap() []error }:
		var all []error
		for _, inner := range e.Unwrap() {
			all = append(all, leaves(inner)...)
		}
		return all
	case interface{ Unwrap() error }:
		return leaves(e.Unwrap())
	}
	return []error{err}
}

// ---- after decoding

// normalize lower-cases domains, fills each app's environment (viper has no
// defaults inside table arrays) and resolves relative *_file paths against
// dir, the config file's directory (also for paths set from the environment:
// one rule for every path).
func (c *Config) normalize(dir string) {
	c.XMPP.Domain = strings.ToLower(c.XMPP.Domain)
	for i, d := range c.XMPP.ServedDomains {
		c.XMPP.ServedDomains[i] = strings.ToLower(d)
	}
	for i := range c.APNs.Apps {
		if c.APNs.Apps[i].Environment == "" {
			c.APNs.Apps[i].Environment = pushnotify.Production
		}
	}
	walkKeys(reflect.ValueOf(c).Elem(), "", func(key string, f reflect.Value) {
		if strings.HasSuffix(key, "_file") && f.String() != "" && !filepath.IsAbs(f.String()) {
			f.SetString(filepath.Join(dir, f.String()))
		}
	})
}
