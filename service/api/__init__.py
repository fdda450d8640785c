"""HTTP layer: the GraphQL endpoint and the REST routes, thin over the domain layer."""
