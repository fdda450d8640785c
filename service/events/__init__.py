"""The per-citizen event log: every state change, hash-chained for tamper evidence."""
