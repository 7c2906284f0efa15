package jingle

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
