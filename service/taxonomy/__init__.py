"""The ESCO taxonomy: import from ESCO's CSV export, label search, concept lookups."""
