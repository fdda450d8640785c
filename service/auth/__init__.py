"""Bearer tokens in, principals out. Deny by default: a principal holds only what it proves."""
