-- Issue 10: a Faust worker names a batch's projection_positions source after the
-- topic-partition of its record with the highest store position (`<topic>:<p>`,
-- streams/worker.py source_of): at most a row per partition. Before, a batch that
-- spanned partitions was named after the set of them (`kafka:<t>:<p>,<t>:<p>...`):
-- a row for every set ever batched together, which the live feed read on every
-- pass. Those rows no longer move; they go. The live feed's position (the sum of
-- the rows) falls once, as after a rebuild: a client resuming across the upgrade
-- gets a fresh snapshot.
-- depends: 0024_window_ranges
DELETE FROM projection_positions WHERE source LIKE 'kafka:%,%';
