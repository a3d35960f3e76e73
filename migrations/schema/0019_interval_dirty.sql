-- Issue 11 §1 / issue 10 follow-up: the 15-minute buckets (0015) are no longer
-- recomputed inside the call-centre group's apply transaction (it halved the
-- group's throughput and was most of the live stream's delivery latency).
-- The apply only marks the buckets its events fall in dirty, here, in the same
-- transaction as the fact rows and the position, so a crash loses no mark; a
-- refresher (streams/refresher.py, projections/interval_buckets.py) recomputes
-- the dirty buckets in transactions of its own and clears the marks it served.
--
-- `generation` grows each time an applier marks a bucket again: the refresher
-- clears a mark only if it still has the generation it read before computing,
-- so an event committed while it computed leaves the bucket dirty (never a
-- lost update). Reports read every bucket from the tenant's earliest dirty one
-- on straight from the fact tables (api/queries/reports.py).
-- depends: 0015_interval_reports

CREATE TABLE interval_dirty (
    tenant              text        NOT NULL,
    bucket_start        timestamptz NOT NULL,
    generation          bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, bucket_start)
);
