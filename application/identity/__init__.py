"""Identities and credentials: tenants, users, service accounts, API keys,
password hashes, access and refresh tokens (issue 9).

Credentials are state kept in PostgreSQL, never events: nothing here emits to
the event store or Kafka, and no function logs a secret or a hash.
"""
