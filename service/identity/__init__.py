"""National numbers (INSZ) and enterprise numbers: validation and keyed hashing."""
