"""The one table of what each role may do, deny by default.

`docs/security.md` shows this table; `markdown_table()` renders it and a test
checks the document says the same as the code.
"""

from __future__ import annotations

from enum import StrEnum

from application.identity.model import Role


class Permission(StrEnum):
    CALLS_READ = "calls:read"            # calls in progress, one call's state and timeline
    CALLS_CONTROL = "calls:control"      # hold, transfer, hang up a call
    SUPERVISION_ACT = "supervision:act"  # monitor, whisper, barge
    AGENTS_READ = "agents:read"          # agents and their live state
    AGENTS_WRITE = "agents:write"        # force any agent's state (login, pause, logout)
    AGENTS_SELF = "agents:self"          # an agent's own state and calls
    CONFIG_READ = "config:read"          # queues, skills, numbers, IVR menus, dialplans
    CONFIG_WRITE = "config:write"        # change them
    HISTORY_READ = "history:read"        # CDRs, past events, exports
    REPORTS_READ = "reports:read"        # aggregated figures
    LIVE_READ = "live:read"              # the live view, filtered by the role's other permissions
    AUDIT_READ = "audit:read"            # the audit log
    USERS_ADMIN = "users:admin"          # people of the tenant
    KEYS_ADMIN = "keys:admin"            # service accounts and API keys of the tenant
    WEBHOOKS_MANAGE = "webhooks:manage"  # webhook subscriptions


P = Permission
_READ = frozenset({P.CALLS_READ, P.AGENTS_READ, P.CONFIG_READ, P.HISTORY_READ, P.REPORTS_READ,
                   P.LIVE_READ})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Everything, within its own tenant.
    Role.ADMIN: frozenset(Permission),
    Role.SUPERVISOR: _READ | {P.CALLS_CONTROL, P.SUPERVISION_ACT, P.AGENTS_WRITE},
    # History and reports; no live calls, no call control.
    Role.ANALYST: frozenset({P.HISTORY_READ, P.REPORTS_READ, P.AGENTS_READ, P.CONFIG_READ,
                             P.LIVE_READ}),
    Role.INTEGRATOR: _READ | {P.WEBHOOKS_MANAGE},
    # Only their own state and calls.
    Role.AGENT: frozenset({P.AGENTS_SELF, P.LIVE_READ}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def markdown_table() -> str:
    """The role x permission table as Markdown (the one in docs/security.md)."""
    roles = list(Role)
    lines = ["| permission | " + " | ".join(r.value for r in roles) + " |",
             "| --- |" + " :-: |" * len(roles)]
    for permission in Permission:
        marks = " | ".join("yes" if allows(r, permission) else "" for r in roles)
        lines.append(f"| `{permission.value}` | {marks} |")
    return "\n".join(lines) + "\n"
