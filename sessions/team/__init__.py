"""Team work around a session: notifications, watching, four-eyes approvals, the journal mirror."""
