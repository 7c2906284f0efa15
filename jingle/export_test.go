package jingle

import (
	"encoding/xml"
	"errors"
	"slices"
)

// ScanTokens walks raw with the scanner and returns what it read as
// encoding/xml tokens (text between tags in one CharData), for the tests
// that hold the scanner to encoding/xml.
func ScanTokens(raw []byte) ([]xml.Token, error) {
	var s scanner
	s.init(raw)
	var t tag
	if !s.root(&t) {
		return nil, s.err
	}
	toks := []xml.Token{startToken(&t)}
	open := []xml.Name{t.name}
	for len(open) > 0 && s.err == nil {
		if s.empty {
			s.empty = false
			s.close()
		} else {
			if text := s.content(true); text != "" && s.err == nil {
				toks = append(toks, xml.CharData(text))
			}
			if s.markup(&t) {
				toks = append(toks, startToken(&t))
				open = append(open, t.name)
				continue
			}
			if s.err != nil {
				break
			}
		}
		toks = append(toks, xml.EndElement{Name: open[len(open)-1]})
		open = open[:len(open)-1]
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	return toks, nil
}

func startToken(t *tag) xml.StartElement {
	start := xml.StartElement{Name: t.name}
	for i := 0; i < t.n; i++ {
		start.Attr = append(start.Attr, *t.at(i))
	}
	start.Attr = slices.Clip(start.Attr)
	return start
}

// IsRefusal reports whether err is the scanner refusing XML that
// encoding/xml reads.
func IsRefusal(err error) bool {
	return errors.As(err, new(refusal))
}
