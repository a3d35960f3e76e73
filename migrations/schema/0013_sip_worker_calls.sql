-- Which B2BUA worker holds which call (adapters/sip/store/lost_calls.py): a worker's
-- storage thread claims a call before storing the batch that initiates it and
-- lets it go once the batch that ends it is stored, so a worker killed without
-- a BYE leaves its open calls here, and `end_lost_worker_calls` ends them with
-- cause `worker_lost`. Runtime bookkeeping, like service_heartbeats: neither a
-- projection nor backed up.
--
-- Workers used to create this table themselves on first use; IF NOT EXISTS
-- lets a database they already created it in take this migration unchanged.
-- depends: 0012_projection_notify
CREATE TABLE IF NOT EXISTS sip_worker_calls (
    call_id     uuid        PRIMARY KEY,
    worker      text        NOT NULL,   -- the worker's SIP host:port
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
-- end_lost_calls reads one worker's claims.
CREATE INDEX IF NOT EXISTS sip_worker_calls_worker ON sip_worker_calls (worker);
