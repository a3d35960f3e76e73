-- Webhook retention (issue 12): the dispatcher deletes delivered deliveries and
-- delivery-log attempts older than DIALTONE_WEBHOOK_RETENTION_S, a batch at a time.
-- These indexes find the old rows without a scan, and let a deleted delivery's
-- attempts (ON DELETE CASCADE) be found by delivery_id rather than by a scan of
-- webhook_attempts for every deleted row.
-- depends: 0011_webhooks

CREATE INDEX webhook_attempts_attempted_at ON webhook_attempts (attempted_at);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
CREATE INDEX webhook_deliveries_delivered_at ON webhook_deliveries (delivered_at)
    WHERE state = 'delivered';
