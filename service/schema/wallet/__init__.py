"""GraphQL of the wallet: the citizen's credential offers (OpenID4VCI)."""
