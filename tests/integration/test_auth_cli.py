"""`dialtone users` and `dialtone keys`, and the first admin of `dialtone up`,
on a real PostgreSQL."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialtone.cli import cli
from dialtone.commands import register
from dialtone.commands.users import (
    DEMO_KEY_FILE,
    PASSWORD_FILE,
    demo_login,
    ensure_initial_admin,
    first_login_message,
    with_connection,
)
from dialtone.settings import Settings
from tests.integration.api_support import running_api
from tests.integration.auth_support import auth_api, bearer, login

register(cli)


def _run(database_url: str, *args: str, stdin: str | None = None) -> str:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), input=stdin, obj=Settings(database_url=database_url),
                           env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_first_start_makes_one_admin_with_a_password_kept_in_a_private_file(
        database_url: str, tmp_path: Path) -> None:
    password = ensure_initial_admin(database_url, tmp_path)
    assert password is not None
    kept = tmp_path / PASSWORD_FILE
    assert kept.read_text().strip() == password
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert ensure_initial_admin(database_url, tmp_path) is None  # the second start
    with auth_api(database_url) as client:
        answer = login(client, "admin", password)
        assert answer.status_code == 200, answer.text
        users = client.get("/v1/auth/users", headers=bearer(answer.json()["access_token"]))
        assert [(u["username"], u["role"], u["tenant"]) for u in users.json()["data"]] == [
            ("admin", "admin", "default")]


def test_users_add_list_passwd_disable(database_url):
    added = _run(database_url, "users", "add", "sue", "--role", "supervisor", "--tenant", "acme",
                 stdin="first long password\nfirst long password\n")
    assert "added sue (supervisor) to tenant acme" in added
    assert "first long password" not in added.replace("Password", "")
    listed = _run(database_url, "users", "list")
    assert "acme\tsue\tsupervisor\tactive" in listed
    _run(database_url, "users", "passwd", "sue",
         stdin="second long password\nsecond long password\n")
    with auth_api(database_url) as client:
        assert login(client, "sue", "first long password").status_code == 401
        assert login(client, "sue", "second long password").status_code == 200
        _run(database_url, "users", "disable", "sue")
        assert login(client, "sue", "second long password").status_code == 401
    assert "acme\tsue\tsupervisor\tdisabled" in _run(database_url, "users", "list")


def test_keys_create_list_revoke(database_url):
    created = _run(database_url, "keys", "create", "ops", "--role", "admin",
                   "--expires-days", "30")
    key = created.strip().splitlines()[-1]
    assert key.startswith("dtk_")
    key_id = key.split("_")[1]
    listed = _run(database_url, "keys", "list")
    assert f"default\t{key_id}\tops\tadmin\tactive" in listed
    assert key.split("_", 2)[2] not in listed
    with auth_api(database_url) as client:
        assert client.get("/v1/auth/keys", headers=bearer(key)).status_code == 200
        assert f"revoked {key_id}" in _run(database_url, "keys", "revoke", key_id)
        assert client.get("/v1/auth/keys", headers=bearer(key)).status_code == 401


def test_a_key_expiring_past_any_date_is_a_usage_error(database_url: str) -> None:
    result = CliRunner().invoke(cli, ["keys", "create", "crm", "--expires-days", "99999999"],
                                env={"DATABASE_URL": database_url})
    assert result.exit_code == 2, result.output
    assert "99999999 is not in the range 1<=x<=36500" in result.output


@pytest.mark.parametrize("args", [
    ["users", "add", "John Smith", "--role", "agent", "--password-stdin"],
    ["keys", "create", "crm sync"],
    ["users", "add", "john", "--role", "agent", "--tenant", "Acme Corp", "--password-stdin"],
    ["keys", "create", "crm", "--tenant", "acme:eu"],
])
def test_names_the_api_could_not_name_are_refused(database_url: str, args: list[str]) -> None:
    """The command line took any name, where the API's create (and its routes' paths)
    take NAME_PATTERN only: such a user could not be reached through the API. And any
    tenant, where the domain takes slugs only: every command of its people was refused."""
    result = CliRunner().invoke(cli, args, obj=Settings(database_url=database_url),
                                input="a long enough password\n",
                                env={"DATABASE_URL": database_url})
    assert result.exit_code == 1
    assert "letters, digits" in result.output
    assert "John Smith" not in _run(database_url, "users", "list")


def test_a_script_gives_the_password_on_stdin_never_in_argv(database_url: str) -> None:
    in_argv = CliRunner().invoke(cli, ["users", "add", "kim", "--role", "agent", "--password",
                                       "a long enough password"],
                                 env={"DATABASE_URL": database_url})
    assert in_argv.exit_code == 2
    assert "No such option: --password" in in_argv.output
    added = _run(database_url, "users", "add", "kim", "--role", "agent", "--password-stdin",
                 stdin="a long enough password\nnot read\n")
    assert "added kim (agent)" in added
    assert "Password" not in added  # no prompt
    with auth_api(database_url) as client:
        assert login(client, "kim", "a long enough password").status_code == 200
        _run(database_url, "users", "passwd", "kim", "--password-stdin",
             stdin="another long password\n")
        assert login(client, "kim", "a long enough password").status_code == 401
        assert login(client, "kim", "another long password").status_code == 200


def test_two_first_starts_at_once_make_one_admin(database_url: str, tmp_path: Path) -> None:
    ensure_initial_admin(database_url, tmp_path / "warm")  # migrations applied, then reset
    with_connection(database_url, lambda conn: conn.execute("DELETE FROM users"))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda d: ensure_initial_admin(database_url, tmp_path / d),
                                ["a", "b"]))
    assert sorted(r is None for r in results) == [False, True]
    assert "admin\tadmin" in _run(database_url, "users", "list")


def test_a_short_password_is_refused(database_url: str) -> None:
    result = CliRunner().invoke(cli, ["users", "add", "tom", "--role", "agent"],
                                input="short\nshort\n", env={"DATABASE_URL": database_url})
    assert result.exit_code == 1
    assert "at least 12 characters" in result.output
    assert "tom" not in _run(database_url, "users", "list")


def test_users_device_sets_and_clears_a_persons_own_phone(database_url):
    _run(database_url, "users", "add", "sam", "--role", "supervisor",
         stdin="a long enough password\na long enough password\n")
    assert "device of sam: sip:sam@10.0.0.7" in _run(database_url, "users", "device", "sam",
                                                      "sip:sam@10.0.0.7")
    assert _run(database_url, "users", "list").rstrip().endswith("\tsip:sam@10.0.0.7")
    _run(database_url, "users", "device", "sam")
    assert _run(database_url, "users", "list").rstrip().endswith("\t-")
    refused = CliRunner().invoke(cli, ["users", "device", "sam", "http://x"],
                                 obj=Settings(database_url=database_url))
    assert refused.exit_code != 0
    assert "not a SIP URI" in refused.output


def test_demo_makes_its_own_key_and_says_how_a_person_logs_in(database_url, tmp_path):
    base = "http://127.0.0.1:8080"
    first = demo_login(database_url, tmp_path, base)
    password = (tmp_path / PASSWORD_FILE).read_text().strip()
    key_file = tmp_path / DEMO_KEY_FILE
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert password in first  # the first start shows it, once
    assert key not in first
    assert f"$(cat {key_file})" in first
    assert f"{base}/v1/auth/token" in first

    again = demo_login(database_url, tmp_path, base)
    assert password not in again
    assert str(tmp_path / PASSWORD_FILE) in again
    new_key = key_file.read_text().strip()
    with running_api(database_url, role=None) as client:
        assert client.get("/v1/calls", headers=bearer(new_key)).status_code == 200
        assert client.get("/v1/calls", headers=bearer(key)).status_code == 401  # revoked


def test_the_first_login_message_shows_a_working_curl(tmp_path):
    message = first_login_message("http://h:1", "pw-123456789012", tmp_path / PASSWORD_FILE)
    assert "pw-123456789012" in message
    assert (f'curl -s -d username=admin -d "password=$(cat {tmp_path / PASSWORD_FILE})" '
            "http://h:1/v1/auth/token") in message


def test_users_agent_links_and_unlinks_a_person_to_their_agent(database_url):
    _run(database_url, "users", "add", "ann", "--role", "agent",
         stdin="a long enough password\na long enough password\n")
    assert "agent of ann: alice" in _run(database_url, "users", "agent", "ann", "alice")
    assert _run(database_url, "users", "list").rstrip().endswith("\talice\t-")
    _run(database_url, "users", "agent", "ann")
    assert _run(database_url, "users", "list").rstrip().endswith("\t-\t-")
    refused = CliRunner().invoke(cli, ["users", "agent", "ann", "Not A Key"],
                                 obj=Settings(database_url=database_url))
    assert refused.exit_code != 0
    assert "not an agent key" in refused.output
    missing = CliRunner().invoke(cli, ["users", "agent", "nobody", "alice"],
                                 obj=Settings(database_url=database_url),
                                 env={"DATABASE_URL": database_url})
    assert missing.exit_code != 0
    assert "no user nobody" in missing.output
