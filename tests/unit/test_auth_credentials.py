"""Password hashes and opaque secrets (API keys, refresh tokens)."""

from __future__ import annotations

from application.identity.credentials import (
    API_KEY_PREFIX,
    REFRESH_PREFIX,
    digest_matches,
    hash_password,
    new_secret,
    parse_secret,
    verify_password,
)


def test_a_password_verifies_against_its_argon2id_hash_only():
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse battery!")


def test_no_stored_hash_never_verifies_even_with_the_dummy_password_space():
    assert not verify_password(None, "")
    assert not verify_password(None, "anything")


def test_a_corrupt_stored_hash_is_a_failed_login_not_an_error():
    assert not verify_password("not-a-hash", "x")


def test_a_secret_reads_back_from_its_text_and_matches_only_its_digest():
    secret = new_secret(API_KEY_PREFIX)
    parsed = parse_secret(secret.text, API_KEY_PREFIX)
    assert parsed == secret
    assert digest_matches(secret.secret, secret.digest)
    assert not digest_matches(secret.secret + "x", secret.digest)
    assert secret.secret.encode() not in secret.digest


def test_secrets_are_unique_and_long():
    secrets = [new_secret(API_KEY_PREFIX) for _ in range(50)]
    assert len({s.text for s in secrets}) == 50
    assert all(len(s.secret) >= 43 for s in secrets)  # 32 random bytes, base64url


def test_malformed_or_foreign_secrets_do_not_parse():
    key = new_secret(API_KEY_PREFIX).text
    assert parse_secret(key, REFRESH_PREFIX) is None
    for text in ("", "dtk", "dtk_", "dtk_abc", "dtk_abc_", "dtk__secret", "eyJhbGciOi.x.y"):
        assert parse_secret(text, API_KEY_PREFIX) is None
