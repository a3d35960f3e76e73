-- Issue 14 §5: `record_calls` in the queue API. queue_live carries the queue's
-- recording policy (Queue.RecordingPolicyChanged) so GET /v1/queues reads it
-- from the projection like every other setting. Rows of queues whose policy
-- was set before this column existed read false until the call-centre
-- projections are rebuilt (`dialtone rebuild callcentre`).
-- depends: 0002_callcentre_projections

ALTER TABLE queue_live ADD COLUMN record_calls boolean NOT NULL DEFAULT false;
