package pushnotify

import "github.com/google/uuid"

// CallUUID returns the UUID an iOS app hands to CallKit for a call: the call
// id itself when it is a UUID (as Conversations and Monal send), otherwise
// the UUIDv5 of caller + "/" + id in the URL namespace. The app derives the
// same value from the <propose/> it later receives over XMPP, so the VoIP
// push and the XMPP signalling land on one CallKit call. caller is the
// caller's bare JID.
func CallUUID(caller, id string) string {
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u.String()
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(caller+"/"+id)).String()
}
