package jingle_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/jinglepush/jinglepush/jingle"
)

// secretsInTestdata are the tokens, node secrets and keys the captures
// hold.
var secretsInTestdata = []string{
	"abcdef0123", // device_token in publish-options (the spike's enable)
	"abababababababababababababababababababababababababababababababab", // voip-token
	"CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD", // token
	"q8Zt1Xr0bN4kV2cW9yL6pA",   // a registration's secret in publish-options
	"BapSuTC6k2i2u9BWFZg7Ww==", // a Tigase encryption key in an enable
}

// checkRedacted fails unless every value of a secret field and every
// <encrypt/> in the XML out says Redacted. out must be well-formed.
func checkRedacted(t *testing.T, out []byte) {
	t.Helper()
	toks, err := jingle.ScanTokens(out)
	if err != nil {
		t.Fatalf("redacted %q: %v", out, err)
	}
	secret, inValue := 0, 0 // depths of the secret field and value, or 0
	for depth, i := 0, 0; i < len(toks); i++ {
		switch tok := toks[i].(type) {
		case xml.StartElement:
			depth++
			switch tok.Name.Local {
			case "field":
				for _, a := range tok.Attr {
					if a.Name.Local == "var" && isSecretVar(a.Value) && secret == 0 {
						secret = depth
					}
				}
			case "value":
				if secret != 0 && inValue == 0 {
					inValue = depth
				}
			case "encrypt":
				if inValue == 0 {
					inValue = depth
				}
			}
		case xml.EndElement:
			if depth == inValue {
				inValue = 0
			}
			if depth == secret {
				secret = 0
			}
			depth--
		case xml.CharData:
			if inValue != 0 && string(tok) != jingle.Redacted {
				t.Fatalf("%q left in %q", tok, out)
			}
		}
	}
}

func isSecretVar(v string) bool {
	v = strings.ToLower(v)
	return v == "password" || strings.HasSuffix(v, "token") || strings.HasSuffix(v, "secret") || strings.HasSuffix(v, "password")
}

// The captures' secrets are hidden, nothing else is touched, and a stanza
// without secrets comes back as it was, not copied.
func TestRedactTestdata(t *testing.T) {
	keep := map[string][]string{ // what must stay
		"iq-command-execute-form.xml":  {"8D5A4C2E-1F0B-4C1A-9E3B-7A6F5D4C3B2A", "com.example.chat", "sandbox", "<field var='empty'/>"},
		"prosody-publish-pubopts.xml":  {"New Message!", "<value>voip</value>", "bobnode"},
		"ejabberd-publish-pubopts.xml": {"<value>voip</value>", "bobnode"},
		"prosody-publish-secret.xml":   {"New Message!", jingle.FormTypePublishOptions},
	}
	redacted := 0
	for _, name := range testdataFiles(t) {
		raw := testdata(t, name)
		orig := bytes.Clone(raw)
		out := jingle.Redact(raw)
		if !bytes.Equal(raw, orig) {
			t.Fatalf("%s: Redact changed its input", name)
		}
		hidden := false
		for _, s := range secretsInTestdata {
			if bytes.Contains(raw, []byte(s)) {
				hidden = true
			}
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("%s: %s is still there: %s", name, s, out)
			}
		}
		for _, s := range keep[name] {
			if !bytes.Contains(out, []byte(s)) {
				t.Errorf("%s: %s is gone: %s", name, s, out)
			}
		}
		switch {
		case hidden:
			redacted++
			if !bytes.Contains(out, []byte(jingle.Redacted)) {
				t.Errorf("%s: no %s in %s", name, jingle.Redacted, out)
			}
		case &out[0] != &raw[0] || len(out) != len(raw):
			t.Errorf("%s: nothing to hide, yet a copy: %s", name, out)
		}
		if _, err := jingle.ScanTokens(raw); err == nil {
			checkRedacted(t, out)
		}
	}
	if redacted < 7 {
		t.Errorf("only %d captures hold secrets", redacted)
	}
}

var redactTests = [...]struct{ in, want string }{
	0: {`<x xmlns='jabber:x:data'><field var='voip-token'><value>ab</value></field><field var='device-id'><value>d</value></field></x>`,
		`<x xmlns='jabber:x:data'><field var='voip-token'><value>[redacted]</value></field><field var='device-id'><value>d</value></field></x>`},
	1: {`<field type="text-private" var="SECRET"><value>s</value><value>t</value></field>`,
		`<field type="text-private" var="SECRET"><value>[redacted]</value><value>[redacted]</value></field>`},
	2: {`<d:field xmlns:d='jabber:x:data' var = 'token' label='a "var" inside'><d:value><![CDATA[x</d:value>]]>y</d:value ></d:field>`,
		`<d:field xmlns:d='jabber:x:data' var = 'token' label='a "var" inside'><d:value>[redacted]</d:value ></d:field>`},
	3: {`<field label="var='token'" var='name'><value>n</value></field>`, `<field label="var='token'" var='name'><value>n</value></field>`},
	4: {`<field var='password'><value>p<b>q</b>r</value><desc>d</desc></field>`, `<field var='password'><value>[redacted]</value><desc>d</desc></field>`},
	5: {`<field var='client_secret'><value/><value>v</value></field>`, `<field var='client_secret'><value/><value>[redacted]</value></field>`},
	6: {`<field var='token'/><value>not in the field</value>`, `<field var='token'/><value>not in the field</value>`},
	7: {`<body><![CDATA[it's <field var='token'><value>cdata</value></field>]]></body><field var='token'><value>v</value></field>`,
		`<body><![CDATA[it's <field var='token'><value>cdata</value></field>]]></body><field var='token'><value>[redacted]</value></field>`},
	8: {`<encrypt xmlns='tigase:push:encrypt:0' alg='aes-128-gcm'>KEY==</encrypt><encrypt/>`, `<encrypt xmlns='tigase:push:encrypt:0' alg='aes-128-gcm'>[redacted]</encrypt><encrypt/>`},
	9: {`<field var='token'><value>abc</valuex>def</value></field>`, `<field var='token'><value>[redacted]</value></field>`},
	// Broken input: whatever follows a secret that does not end is hidden.
	10: {`<field var='token'><value>abcdef`, `<field var='token'><value>[redacted]`},
	11: {`<field var='token'><value>abc</value`, `<field var='token'><value>[redacted]`},
	12: {`<field var='token'><value x='>abc`, `<field var='token'>[redacted]`},
	13: {`<field var='token'><value><![CDATA[abc`, `<field var='token'><value>[redacted]`},
	14: {`<field var='token`, `<field var='token`},
	15: {`<`, `<`},
	16: {`<>`, `<>`},
	17: {``, ``},
	18: {`</field><field var=token><value>v</value></field>`, `</field><field var=token><value>v</value></field>`},
}

func TestRedact(t *testing.T) {
	for i, tc := range redactTests {
		if got := string(jingle.Redact([]byte(tc.in))); got != tc.want {
			t.Errorf("%d: Redact(%s)\n got %s\nwant %s", i, tc.in, got, tc.want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	addSeeds(f)
	for _, tc := range redactTests {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := jingle.Redact(raw)
		if again := jingle.Redact(out); !bytes.Equal(again, out) {
			t.Fatalf("Redact(Redact(%q)) = %q, not %q", raw, again, out)
		}
		if !bytes.Contains(raw, []byte("field")) && !bytes.Contains(raw, []byte("encrypt")) && !bytes.Equal(out, raw) {
			t.Fatalf("Redact(%q) = %q with nothing to hide", raw, out)
		}
		// A stanza stays a stanza, its secrets hidden.
		if _, err := jingle.ScanTokens(raw); err == nil {
			checkRedacted(t, out)
		}
	})
}
