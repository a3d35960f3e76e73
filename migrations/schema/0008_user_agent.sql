-- The agent a person of role `agent` is (issue 9): the key of that agent in the
-- user's own tenant. Set by an admin; an agent user may read and act on this
-- agent only (its state, login/pause/unpause/logout, wrap-up), and any other
-- agent's key answers 404 to them.
-- depends: 0007_tenants

ALTER TABLE users ADD COLUMN agent_key text;
