-- Identities and their credentials (issue 9). These tables are state, not
-- projections: credentials are never events, so nothing here can be rebuilt
-- from the event store and nothing here is ever published to Kafka.
-- depends: 0002_callcentre_projections

CREATE TABLE tenants (
    id          text        PRIMARY KEY,   -- a slug, the value every row's `tenant` column holds
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- People. Usernames are unique across tenants so the login form needs no tenant.
CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    tenant         text        NOT NULL REFERENCES tenants (id),
    username       text        NOT NULL UNIQUE,
    role           text        NOT NULL,
    password_hash  text        NOT NULL,  -- argon2id, PHC string
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_tenant ON users (tenant);

-- Machines and integrators; they authenticate with API keys.
CREATE TABLE service_accounts (
    id           uuid        PRIMARY KEY,
    tenant       text        NOT NULL REFERENCES tenants (id),
    name         text        NOT NULL,
    role         text        NOT NULL,
    disabled_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, name)
);

-- An API key is `dtk_<key_id>_<secret>`: the key id is not secret and finds the
-- row; only a SHA-256 of the 256-bit secret is kept.
CREATE TABLE api_keys (
    key_id       text        PRIMARY KEY,
    account_id   uuid        NOT NULL REFERENCES service_accounts (id),
    secret_hash  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- Refresh tokens rotate: each is used once; presenting a used one again revokes
-- its whole family (the chain started by one login), as OAuth 2.0 security BCP advises.
CREATE TABLE refresh_tokens (
    token_id     text        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id),
    family       uuid        NOT NULL,
    secret_hash  bytea       NOT NULL,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

-- Failed logins per attempted username (known or not, so a lockout does not
-- reveal which names exist); shared by every API process.
CREATE TABLE login_failures (
    username      text        PRIMARY KEY,
    failures      integer     NOT NULL,
    window_start  timestamptz NOT NULL,
    locked_until  timestamptz
);

-- The key that signs dialtone's own access tokens, made at first start unless
-- DIALTONE_AUTH_SIGNING_KEY is set. One row.
CREATE TABLE auth_signing_key (
    id          integer     PRIMARY KEY CHECK (id = 1),
    secret      bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Who did what: logins (failed too) now; supervision actions and commands later.
CREATE TABLE audit_log (
    id            bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    tenant        text,                 -- NULL when the actor is unknown (a failed login)
    actor         text,                 -- user id, key id, or NULL when unknown
    actor_kind    text        NOT NULL, -- user | key | anonymous
    action        text        NOT NULL, -- e.g. auth.login, auth.refresh, calls.barge
    outcome       text        NOT NULL, -- ok | denied | locked | ...
    aggregate_id  uuid,
    request_id    text        NOT NULL,
    detail        jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at);
CREATE INDEX audit_log_actor_at ON audit_log (actor, at);
CREATE INDEX audit_log_aggregate ON audit_log (aggregate_id) WHERE aggregate_id IS NOT NULL;
