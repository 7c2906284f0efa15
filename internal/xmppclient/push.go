package xmppclient

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// EnablePush registers the account's push service with its server (XEP-0357
// section 5): the server will publish to node on the pubsub service jid when
// this resource cannot be reached. options become the publish-options form
// (for jinglepush: "secret"); nil or empty sends none.
func (c *Client) EnablePush(ctx context.Context, jid, node string, options map[string]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "<iq type='set' id='%s'><enable xmlns='%s' jid='%s' node='%s'>", newID(), nsPush, escape(jid), escape(node))
	if len(options) > 0 {
		writeForm(&b, publishOptionsFormType, options)
	}
	b.WriteString("</enable></iq>")
	if _, err := c.IQ(ctx, b.String()); err != nil {
		return fmt.Errorf("xmppclient: enable push: %w", err)
	}
	return nil
}

// DisablePush unregisters push for jid and node (XEP-0357 section 6); an
// empty node disables every node of jid.
func (c *Client) DisablePush(ctx context.Context, jid, node string) error {
	raw := fmt.Sprintf("<iq type='set' id='%s'><disable xmlns='%s' jid='%s'", newID(), nsPush, escape(jid))
	if node != "" {
		raw += " node='" + escape(node) + "'"
	}
	if _, err := c.IQ(ctx, raw+"/></iq>"); err != nil {
		return fmt.Errorf("xmppclient: disable push: %w", err)
	}
	return nil
}

// writeForm writes a XEP-0004 submit form, fields in name order so that the
// bytes are predictable. An empty formType leaves out FORM_TYPE.
func writeForm(b *strings.Builder, formType string, fields map[string]string) {
	b.WriteString("<x xmlns='" + nsData + "' type='submit'>")
	if formType != "" {
		b.WriteString("<field var='FORM_TYPE' type='hidden'><value>" + escape(formType) + "</value></field>")
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		b.WriteString("<field var='" + escape(k) + "'><value>" + escape(fields[k]) + "</value></field>")
	}
	b.WriteString("</x>")
}
