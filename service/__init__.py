"""Competence passport: a lifelong, verifiable record of a citizen's competences."""
