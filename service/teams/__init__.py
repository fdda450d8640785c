"""Team competence checks: an organisation's staff, with their consent, against what the
organisation needs (ESCO occupations or its own competence profiles)."""
