"""Each queue's service level over the day, per 15-minute bucket (the wallboard's line).

One function, `service_level_buckets`, so the interval reports can reuse it.
Bucket membership is QUEUE_SUMS' (projections/kpi.py) with the bucket as the
window: offered by when the visit started, answered within T and short abandons
by when it ended; the ratio is `kpi.service_level`. So the sums of a day's
buckets are the day's sums, and a bucket's service level is what `today`
would say if the day were that bucket.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from api.schemas.live import QueueServiceLevel, ServiceLevelBucket
from projections import kpi
from projections.kpi import QueueSums

BUCKET_S = 900.0

# $1 tenant, $2 since, $3 until, $4 bucket seconds: (queue, bucket index) -> sums.
BUCKET_SUMS = """
SELECT queue_id, bucket, sum(offered)::int AS offered, sum(answered)::int AS answered,
       sum(within)::int AS answered_within_sl, sum(short)::int AS short_abandoned
FROM (
    SELECT queue_id, floor(extract(epoch FROM offered_at - $2) / $4)::int AS bucket,
           1 AS offered, 0 AS answered, 0 AS within, 0 AS short
    FROM queue_visits WHERE tenant = $1 AND offered_at >= $2 AND offered_at < $3
    UNION ALL
    SELECT queue_id, floor(extract(epoch FROM left_at - $2) / $4)::int,
           0, (outcome = 'answered')::int,
           (outcome = 'answered' AND wait_s <= service_level_s)::int,
           (outcome = 'short_abandoned')::int
    FROM queue_visits WHERE tenant = $1 AND left_at >= $2 AND left_at < $3
      AND outcome IN ('answered', 'short_abandoned')
) visits
GROUP BY queue_id, bucket
"""
_QUEUES = """
SELECT queue_id, key, name FROM queue_live
WHERE tenant = $1 AND ($2::text IS NULL OR key = $2) ORDER BY key
"""


def next_midnight(now: datetime, zone: str) -> datetime:
    """The end of `now`'s local day in `zone` (23 or 25 hours after its start on DST days)."""
    local = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    return datetime(local.year, local.month, local.day,
                    tzinfo=ZoneInfo(zone)).astimezone(now.tzinfo)


async def service_level_buckets(conn: asyncpg.Connection, tenant: str, window: kpi.Window,
                                queue_key: str | None = None,
                                bucket_s: float = BUCKET_S) -> list[QueueServiceLevel]:
    """Each queue's (or only `queue_key`'s) buckets of `bucket_s` from `window.since`
    up to the one holding `window.until` (that one partial)."""
    rows = await conn.fetch(BUCKET_SUMS, tenant, window.since, window.until, bucket_s)
    sums: defaultdict[UUID, dict[int, QueueSums]] = defaultdict(dict)
    for r in rows:
        sums[r["queue_id"]][r["bucket"]] = QueueSums(
            offered=r["offered"], answered=r["answered"],
            answered_within_sl=r["answered_within_sl"], short_abandoned=r["short_abandoned"])
    count = int((window.until - window.since).total_seconds() // bucket_s) + 1
    step = timedelta(seconds=bucket_s)
    return [QueueServiceLevel(
        queue_id=q["queue_id"], key=q["key"], name=q["name"],
        buckets=[_bucket(window.since + n * step, step, sums[q["queue_id"]].get(n, QueueSums()))
                 for n in range(count)])
        for q in await conn.fetch(_QUEUES, tenant, queue_key)]


def _bucket(since: datetime, step: timedelta, s: QueueSums) -> ServiceLevelBucket:
    return ServiceLevelBucket(since=since, until=since + step, offered=s.offered,
                              answered=s.answered, answered_within_sl=s.answered_within_sl,
                              short_abandoned=s.short_abandoned,
                              service_level=kpi.service_level(s))
