"""Endorsements of claims by organisations other than the issuer."""
