"""Webhooks: signed CloudEvents POSTed to integrators' URLs (docs/webhooks.md).

`delivery` sends what is queued, `outcomes` records what its attempts came to,
and `guard` keeps the targets off loopback, private, link-local and other
non-global addresses. What is queued for whom is decided by
`streams.webhooks_decide`, the one module both runners (the in-process follower
and the Kafka consumer group) use.
"""
