"""Webhooks: organisations' subscriptions and the dispatcher that delivers the outbox."""
