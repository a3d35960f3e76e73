-- Webhooks (issue 12): signed CloudEvents POSTed to an integrator's URL.
-- The secret is a shared HMAC key (Standard Webhooks `whsec_...`): it has to be
-- stored to sign, so it lives here only; it is never logged and never copied
-- into an event, a topic or a delivery row.
-- depends: 0008_user_agent

CREATE TABLE webhook_subscriptions (
    id            uuid        PRIMARY KEY,
    tenant        text        NOT NULL,
    url           text        NOT NULL,
    event_types   text[]      NOT NULL,          -- exact types, or '*' for every type
    secret        text        NOT NULL,
    status        text        NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'paused', 'disabled')),
    -- When the current run of failed attempts began (NULL while deliveries succeed):
    -- the subscription is disabled once it has failed for longer than the setting.
    failing_since timestamptz,
    disabled_reason text,
    -- Highest CloudEvents sequence (store position) delivered to this subscription.
    delivered_position bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant, created_at);

-- The tenant of each aggregate, learnt from its created event: later events of an
-- aggregate do not name their tenant, and a subscription sees its tenant only.
CREATE TABLE webhook_aggregates (
    aggregate_id uuid PRIMARY KEY,
    tenant       text NOT NULL
);

-- One row per (subscription, event): the delivery queue and its outcome. Per
-- aggregate, only the pending row with the lowest aggregate version is sent, so a
-- failing aggregate holds its later events and nothing is reordered.
CREATE TABLE webhook_deliveries (
    id              bigserial   PRIMARY KEY,
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    aggregate_id    uuid        NOT NULL,
    aggregate_version integer   NOT NULL,
    position        bigint      NOT NULL,        -- the CloudEvents sequence
    payload         jsonb       NOT NULL,        -- the CloudEvent as sent
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,                 -- a dispatcher's lease on the row
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_heads ON webhook_deliveries
    (subscription_id, aggregate_id, aggregate_version) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_position ON webhook_deliveries (subscription_id, position);

-- The delivery log: one row per HTTP attempt.
CREATE TABLE webhook_attempts (
    id              bigserial   PRIMARY KEY,
    delivery_id     bigint      NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions ON DELETE CASCADE,
    attempt         integer     NOT NULL,
    attempted_at    timestamptz NOT NULL,
    status_code     integer,                     -- NULL when no response came
    error           text,
    duration_ms     double precision NOT NULL
);
CREATE INDEX webhook_attempts_subscription ON webhook_attempts (subscription_id, id);
