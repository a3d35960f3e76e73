"""The SQL of the webhook outbox's sender (application/webhooks/delivery.py), one
statement a constant. A round costs a fixed number of these whatever its size:
each takes arrays (unnested server-side), never one statement per delivery.
"""

CLAIM = """
WITH heads AS (
    SELECT DISTINCT ON (subscription_id, aggregate_id)
           id, subscription_id, next_attempt_at, claimed_until
    FROM webhook_deliveries WHERE state = 'pending'
    ORDER BY subscription_id, aggregate_id, aggregate_version
), due AS (
    SELECT h.id FROM heads h JOIN webhook_subscriptions s ON s.id = h.subscription_id
    WHERE s.status = 'active' AND h.next_attempt_at <= now()
      AND (h.claimed_until IS NULL OR h.claimed_until < now())
    ORDER BY h.next_attempt_at LIMIT %(limit)s
)
UPDATE webhook_deliveries d SET claimed_until = now() + make_interval(secs => %(lease)s)
FROM due, webhook_subscriptions s
WHERE d.id = due.id AND s.id = d.subscription_id
  AND d.state = 'pending' AND d.next_attempt_at <= now()
  AND (d.claimed_until IS NULL OR d.claimed_until < now())
RETURNING d.id, d.subscription_id, d.event_id, d.event_type, d.aggregate_id,
          d.aggregate_version, d.position, d.payload::text AS body, d.attempts, d.created_at,
          s.url, s.secret, d.claimed_until AS lease
"""
# The UPDATE re-checks state and next_attempt_at: a row another dispatcher recorded
# (delivered, or retried later) while this claim waited for its lock is not taken.
# Its claimed_until is the claim's lease and its token: a later claim (only possible
# once the lease has run out) sets a later one.

# Recording outcomes (application/webhooks/outcomes.py): first the subscriptions, in
# id order, then the deliveries that still carry this dispatcher's lease. A deleted
# delivery, or one claimed again by another dispatcher, is not returned.
LOCK_SUBSCRIPTIONS = """
SELECT id FROM webhook_subscriptions WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE
"""
OURS = """
SELECT d.id FROM webhook_deliveries d
JOIN unnest(%s::bigint[], %s::timestamptz[]) AS r(id, lease) ON d.id = r.id
WHERE d.state = 'pending' AND d.claimed_until = r.lease
ORDER BY d.id FOR UPDATE OF d
"""
# Claimed deliveries a round did not attempt (its lease was running out): free now.
RELEASE = """
UPDATE webhook_deliveries d SET claimed_until = NULL
FROM unnest(%s::bigint[], %s::timestamptz[]) AS r(id, lease)
WHERE d.id = r.id AND d.claimed_until = r.lease
"""
# Outcomes are recorded with one statement each per batch (arrays unnested), not one
# per delivery: per-row statements were a visible share of the CPU.
LOG = """
INSERT INTO webhook_attempts (delivery_id, subscription_id, attempt, attempted_at, status_code,
                              error, duration_ms)
SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::integer[], %s::timestamptz[],
                     %s::integer[], %s::text[], %s::double precision[])
"""
DELIVERED = """
UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), claimed_until = NULL,
       attempts = attempts + 1 WHERE id = ANY(%s)
"""
RETRY = """
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, claimed_until = NULL,
       next_attempt_at = now() + make_interval(secs => r.wait_s)
FROM unnest(%s::bigint[], %s::double precision[]) AS r(id, wait_s) WHERE d.id = r.id
"""
SUCCEEDED = """
UPDATE webhook_subscriptions s SET failing_since = NULL,
       delivered_position = GREATEST(s.delivered_position, r.position)
FROM unnest(%s::uuid[], %s::bigint[]) AS r(id, position) WHERE s.id = r.id
"""
FAILED = """
UPDATE webhook_subscriptions s SET failing_since = COALESCE(s.failing_since, r.at)
FROM unnest(%s::uuid[], %s::timestamptz[]) AS r(id, at) WHERE s.id = r.id
"""
DISABLE = """
UPDATE webhook_subscriptions
SET status = 'disabled', updated_at = now(),
    disabled_reason = 'every attempt failed since ' || failing_since::text
WHERE id = ANY(%s) AND status = 'active'
  AND failing_since < now() - make_interval(secs => %s)
RETURNING id
"""
POSTPONE = """
UPDATE webhook_deliveries SET claimed_until = NULL,
       next_attempt_at = now() + make_interval(secs => %s) WHERE id = ANY(%s)
"""
CDRS = """
SELECT DISTINCT ON (call_id) * FROM cdr WHERE call_id = ANY(%s)
ORDER BY call_id, last_version DESC
"""
SET_PAYLOADS = """
UPDATE webhook_deliveries d SET payload = r.body::jsonb
FROM unnest(%s::bigint[], %s::text[]) AS r(id, body) WHERE d.id = r.id
"""
# Retention: delivered rows and attempt-log rows older than retention_s go, a
# bounded batch per statement so that no delete holds locks for long.
PRUNE_ATTEMPTS = """
DELETE FROM webhook_attempts WHERE id IN (
    SELECT id FROM webhook_attempts
    WHERE attempted_at < now() - make_interval(secs => %s) LIMIT %s)
"""
PRUNE_DELIVERED = """
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE state = 'delivered' AND delivered_at < now() - make_interval(secs => %s) LIMIT %s)
"""
