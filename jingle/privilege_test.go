package jingle_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/jinglepush/jinglepush/jingle"
)

var privilegeTests = [...]struct {
	file      string
	namespace string
	perms     map[string]string
	err       error
}{
	0: {file: "prosody-privilege.xml", namespace: jingle.NSPrivilege2, perms: map[string]string{"roster": "get", "presence": "managed_entity"}},
	1: {file: "ejabberd-privilege.xml", namespace: jingle.NSPrivilege1, perms: map[string]string{"message": "none", "roster": "get", "presence": "managed_entity"}},
	2: {file: "ejabberd24-privilege.xml", namespace: jingle.NSPrivilege2, perms: map[string]string{"message": "none", "roster": "get", "iq": "", "presence": "managed_entity"}},
	3: {file: "ejabberd-servicelog-chat.xml", err: jingle.ErrMalformed},
	4: {file: "prosody-presence-available.xml", err: jingle.ErrMalformed},
}

func TestParsePrivilege(t *testing.T) {
	for i, tc := range privilegeTests {
		p, err := jingle.ParsePrivilege(testdata(t, tc.file))
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Fatalf("%d: ParsePrivilege(%s) error = %v, want %v", i, tc.file, err, tc.err)
		}
		if err != nil {
			continue
		}
		if p.Namespace != tc.namespace || !reflect.DeepEqual(p.Perms, tc.perms) || p.From.String() != "localhost" {
			t.Errorf("%d: ParsePrivilege(%s) = %+v, want namespace %s perms %v from localhost", i, tc.file, p, tc.namespace, tc.perms)
		}
	}
}
