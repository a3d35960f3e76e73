-- A person's own phone (issue 9): the SIP URI the platform calls when this
-- supervisor monitors, whispers or barges. Set by an admin; a supervision
-- request never names a device itself.
-- depends: 0005_identities

ALTER TABLE users ADD COLUMN device text;
