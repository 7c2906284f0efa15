package pushnotify

import "testing"

func TestCallUUID(t *testing.T) {
	tests := [...]struct {
		caller, id, want string
	}{
		// A UUID id is used as is, in canonical lower case.
		0: {"alice@example.com", "0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		1: {"alice@example.com", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		// Anything else: UUIDv5(URL namespace, caller + "/" + id). The values
		// were computed independently with Python's uuid.uuid5(uuid.NAMESPACE_URL, ...).
		2: {"alice@example.com", "call1", "da68fd76-49ef-5ee8-b619-051363bfa616"},
		// uuid.Parse accepts braces and urn: prefixes; those are not "a UUID id".
		3: {"alice@localhost", "{0f8fad5b-d9cb-469f-a165-70867728950e}", ""},
	}
	for i, tc := range tests {
		got := CallUUID(tc.caller, tc.id)
		if tc.want == "" {
			if got == "0f8fad5b-d9cb-469f-a165-70867728950e" {
				t.Errorf("%d: braced id taken as UUID", i)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%d: CallUUID(%q, %q) = %s, want %s", i, tc.caller, tc.id, got, tc.want)
		}
	}
}
