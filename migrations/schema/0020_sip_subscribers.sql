-- Devices that register at the SIP edge (issue 14 §1). Kamailio's auth_db reads
-- this table straight from the project database (infra/kamailio/registrar.cfg:
-- user_column `username`, domain_column `domain`, password_column `ha1`), so
-- its column names are Kamailio's. Only the digest hashes are kept, never the
-- password: ha1 = md5(username:domain:password) and ha1b =
-- md5(username@domain:domain:password), the realm being the tenant's SIP domain.
-- Like the identities (0005) this is state, not a projection: credentials are
-- never events.
-- depends: 0007_tenants

-- The SIP domain of a tenant: its devices register as user@sip_domain, and the
-- domain is the digest realm. One tenant per domain.
ALTER TABLE tenants ADD COLUMN sip_domain text UNIQUE;

CREATE TABLE sip_subscribers (
    id          bigserial   PRIMARY KEY,
    tenant      text        NOT NULL REFERENCES tenants (id),
    username    text        NOT NULL,   -- the device's SIP user
    domain      text        NOT NULL,   -- the tenant's SIP domain when provisioned
    ha1         text        NOT NULL,
    ha1b        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (username, domain)
);
CREATE INDEX sip_subscribers_tenant ON sip_subscribers (tenant, username);
