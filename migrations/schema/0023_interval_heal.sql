-- Issue 11 leftover: buckets computed before 0022 keep their hold inside talk_s and
-- read hold_s 0. The upgrade heals them itself: every bucket computed so far
-- (interval_marks) is marked dirty (interval_dirty, 0019), so the refresher
-- (streams/refresher.py) recomputes it with 0022's split. It does so a batch of a
-- tenant's oldest buckets per transaction (projections/interval_buckets.py BATCH),
-- each tenant in turn, between its usual work; until a bucket is recomputed, reports
-- read it straight from the fact tables (right, only slower), so they show the hold
-- at once. Buckets computed after 0022 are recomputed too (they cannot be told
-- apart); they come out the same. A mark already there gets its generation bumped,
-- so a refresher computing it with the old code while this commits keeps it dirty.
-- Marking a million buckets took 12.8 s here (docs/reports.md, Hold: Upgrading).
-- depends: 0022_interval_hold

INSERT INTO interval_dirty AS d (tenant, bucket_start)
SELECT tenant, bucket_start FROM interval_marks
ON CONFLICT (tenant, bucket_start) DO UPDATE SET generation = d.generation + 1;
