"""The registrar's side of the platform: what Kamailio holds in Redis, observed."""
