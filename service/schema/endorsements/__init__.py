"""Endorsements in GraphQL."""
