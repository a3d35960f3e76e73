"""Where the SIP side puts the commands it issues: values of ``domain.call_commands``
(one type per command serves the adapter, the service and the aggregate).

SIP handling never calls the application service directly (it must never wait on
the database): it puts a command here and the storage thread later hands it to
``CallService.handle`` inside a group-commit batch.
"""

from __future__ import annotations

from typing import Protocol

from domain.call_commands import CallCommand


class CommandSink(Protocol):
    """Where the SIP side puts commands; must return at once, never block."""

    def put(self, command: CallCommand) -> None: ...
