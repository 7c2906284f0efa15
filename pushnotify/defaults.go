package pushnotify

// DefaultAlerts are the texts of visible pushes when the operator sets
// none.
func DefaultAlerts() Alerts {
	return Alerts{
		Incoming: "Incoming call from %s",
		Missed:   "Missed call from %s",
		Message:  "New message",
	}
}
