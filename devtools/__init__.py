"""Development and test tooling, apart from the platform's composition root (dialtone/):
the embedded Kafka broker harness, scriptable pjsua2 softphones and the drivers of
them, and the simulated call lifecycles that tests, benchmarks and the demo store.

The platform's own code never imports this package (an import-linter contract in
pyproject.toml); only the dev and demo commands, tests and bench/ do.
"""
