package jingle

import (
	"encoding/xml"
	"io"
)

// Form is a parsed XEP-0004 data form.
type Form struct {
	Type     string              // "submit", "form", "result", "cancel"
	FormType string              // the value of the FORM_TYPE field, which is not repeated in Fields
	Fields   map[string][]string // var → values, in document order; fields without var are left out
}

// Get returns the first value of the field v, or "".
func (f Form) Get(v string) string {
	if vals := f.Fields[v]; len(vals) > 0 {
		return vals[0]
	}
	return ""
}

// Has reports whether the form has a field v (even one without a value).
func (f Form) Has(v string) bool {
	_, ok := f.Fields[v]
	return ok
}

// readForm reads the jabber:x:data <x/> start, which s has just opened.
func readForm(s *scanner, start *tag) Form {
	f := Form{Type: start.attr("type")}
	var child tag
	for s.next(&child) {
		if !is(child.name, NSDataForm, "field") {
			s.skip()
			continue
		}
		v := child.attr("var")
		values := fieldValues(s)
		switch {
		case s.err != nil:
		case v == "FORM_TYPE":
			if len(values) > 0 {
				f.FormType = values[0]
			}
		case v != "":
			if f.Fields == nil {
				f.Fields = make(map[string][]string)
			}
			if _, dup := f.Fields[v]; !dup && len(f.Fields) >= maxFormFields {
				s.fail(malformed("more than %d form fields", maxFormFields))
			}
			if len(f.Fields[v])+len(values) > maxFieldValues {
				s.fail(malformed("field %q has more than %d values", short(v), maxFieldValues))
			}
			// A field without values is still there (Has is true).
			f.Fields[v] = append(f.Fields[v], values...)
			if f.Fields[v] == nil {
				f.Fields[v] = []string{}
			}
		}
	}
	if s.err != nil {
		return Form{}
	}
	return f
}

// fieldValues reads the <value/> children of a <field/>.
func fieldValues(s *scanner) []string {
	var values []string
	var child tag
	for s.next(&child) {
		if !is(child.name, NSDataForm, "value") {
			s.skip()
			continue
		}
		if len(values) >= maxFieldValues {
			s.fail(malformed("more than %d values in a field", maxFieldValues))
		}
		values = append(values, s.text())
	}
	return values
}

// FormSpec is a data form the component sends (XEP-0004), fields in order.
type FormSpec struct {
	Type         string // "form" or "result" ("form" when empty)
	FormType     string // written first as the hidden FORM_TYPE field; omitted when empty
	Title        string
	Instructions string
	Fields       []Field
}

// Field is one field of a FormSpec.
type Field struct {
	Var      string
	Type     string // "text-single", "jid-single", "hidden", "fixed", "boolean", ...; omitted when empty
	Label    string
	Values   []string
	Required bool
}

// TokenReader returns the form as <x xmlns='jabber:x:data'/>.
func (f FormSpec) TokenReader() xml.TokenReader {
	var b builder
	f.write(&b)
	return b.reader()
}

func (f FormSpec) write(b *builder) {
	typ := f.Type
	if typ == "" {
		typ = "form"
	}
	b.start(xml.Name{Space: NSDataForm, Local: "x"}, "type", typ)
	b.element("title", f.Title)
	b.element("instructions", f.Instructions)
	if f.FormType != "" {
		Field{Var: "FORM_TYPE", Type: "hidden", Values: []string{f.FormType}}.write(b)
	}
	for _, field := range f.Fields {
		field.write(b)
	}
	b.end()
}

func (f Field) write(b *builder) {
	b.start(xml.Name{Local: "field"}, "var", f.Var, "type", f.Type, "label", f.Label)
	if f.Required {
		b.start(xml.Name{Local: "required"})
		b.end()
	}
	for _, v := range f.Values {
		b.start(xml.Name{Local: "value"})
		b.text(v)
		b.end()
	}
	b.end()
}

// builder collects the tokens of a reply payload.
type builder struct {
	toks  []xml.Token
	stack []xml.Name
}

// start opens an element; attrs are name/value pairs, and pairs with an
// empty value are left out.
func (b *builder) start(name xml.Name, attrs ...string) {
	s := xml.StartElement{Name: name}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			s.Attr = append(s.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	b.toks = append(b.toks, s)
	b.stack = append(b.stack, name)
}

func (b *builder) end() {
	name := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	b.toks = append(b.toks, xml.EndElement{Name: name})
}

func (b *builder) text(s string) {
	if s != "" {
		b.toks = append(b.toks, xml.CharData(s))
	}
}

// element writes <local>text</local>, nothing when text is empty.
func (b *builder) element(local, text string) {
	if text == "" {
		return
	}
	b.start(xml.Name{Local: local})
	b.text(text)
	b.end()
}

func (b *builder) reader() xml.TokenReader {
	return &tokenSlice{toks: b.toks}
}

// tokenSlice is a TokenReader over prepared tokens; it can be read once.
type tokenSlice struct {
	toks []xml.Token
}

func (t *tokenSlice) Token() (xml.Token, error) {
	if len(t.toks) == 0 {
		return nil, io.EOF
	}
	tok := t.toks[0]
	t.toks = t.toks[1:]
	return tok, nil
}
