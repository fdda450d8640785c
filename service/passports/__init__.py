"""Reading a citizen's passport: authorized, aggregated per competence, always recorded."""
