"""Claims: one organisation states that one citizen has one competence."""
