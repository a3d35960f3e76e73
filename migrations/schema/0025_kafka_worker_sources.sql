-- Issue 10: a Faust worker names its projection_positions source after the topic
-- and itself (`kafka:<topic>@<instance>`, streams/worker.py). Before, a batch's set
-- of partitions named it (`<topic>:<p>` or `kafka:<topic>:<p>,<topic>:<p>...`): a
-- row for every combination of partitions ever batched together, up to 4,096 per
-- topic and projection, all read by the live feed on each pass and listed by
-- /healthz. Those rows stop moving once the new worker runs; they go. The live
-- feed's position (the sum of the rows) falls once, as after a rebuild: a client
-- resuming across the upgrade gets a fresh snapshot.
-- depends: 0024_window_ranges
DELETE FROM projection_positions
WHERE source NOT LIKE 'store:%' AND source NOT LIKE 'kafka:%@%';
