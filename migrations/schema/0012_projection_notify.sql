-- Live feed (issue 10): every API process LISTENs on `dialtone_projections` and
-- learns of a projection change by itself (no sticky sessions behind a load
-- balancer). Every projection writer (the embedded in-process runner, the Faust
-- worker, `dialtone rebuild`, `dialtone restore`) moves projection_positions in
-- the transaction that writes its rows, so one statement-level trigger here
-- covers them all; PostgreSQL delivers the notification at commit and folds
-- identical ones of one transaction into one. The payload is empty: a listener
-- reads the positions it needs itself, so a lost or merged wake-up loses nothing.
-- depends: 0001_call_projections

CREATE FUNCTION notify_projection_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dialtone_projections', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER projection_positions_notify
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON projection_positions
FOR EACH STATEMENT EXECUTE FUNCTION notify_projection_change();
