"""The role x permission table: deny by default, and docs/security.md shows the code's table."""

from __future__ import annotations

from pathlib import Path

from api.auth.permissions import ROLE_PERMISSIONS, Permission, allows, markdown_table
from application.identity.model import Role

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_security_doc_shows_the_table_the_code_enforces():
    assert markdown_table() in SECURITY_DOC.read_text()


def test_every_role_has_a_row():
    assert set(ROLE_PERMISSIONS) == set(Role)


def test_admin_may_do_everything():
    assert all(allows(Role.ADMIN, p) for p in Permission)


def test_agent_may_only_act_on_itself():
    # live:read shows an agent only their own agent (api/live/snapshot.py).
    assert ROLE_PERMISSIONS[Role.AGENT] == {Permission.AGENTS_SELF, Permission.LIVE_READ}


def test_analyst_reads_history_but_controls_no_call():
    assert allows(Role.ANALYST, Permission.HISTORY_READ)
    assert allows(Role.ANALYST, Permission.REPORTS_READ)
    assert not allows(Role.ANALYST, Permission.CALLS_CONTROL)
    assert not allows(Role.ANALYST, Permission.SUPERVISION_ACT)


def test_supervisor_supervises_but_administers_nobody():
    assert allows(Role.SUPERVISOR, Permission.SUPERVISION_ACT)
    assert not allows(Role.SUPERVISOR, Permission.USERS_ADMIN)
    assert not allows(Role.SUPERVISOR, Permission.KEYS_ADMIN)


def test_only_admin_reads_the_audit_log_and_manages_users_and_keys():
    for permission in (Permission.AUDIT_READ, Permission.USERS_ADMIN, Permission.KEYS_ADMIN):
        assert [r for r in Role if allows(r, permission)] == [Role.ADMIN]


def test_integrator_manages_webhooks_and_only_reads():
    assert allows(Role.INTEGRATOR, Permission.WEBHOOKS_MANAGE)
    assert not allows(Role.INTEGRATOR, Permission.CONFIG_WRITE)
    assert not allows(Role.INTEGRATOR, Permission.CALLS_CONTROL)
