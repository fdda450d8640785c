"""Team competence checks, their consents and competence profiles in GraphQL."""
