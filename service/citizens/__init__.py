"""Citizens: found again by the keyed hash of their INSZ, locked one at a time for writes."""
