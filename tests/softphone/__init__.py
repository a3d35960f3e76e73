"""A small pjsua2 softphone for tests and the demo: one process, one Endpoint."""
