"""Domain commands the B2BUA issues, as plain values queued for the storage thread.

SIP handling never calls the application service directly (it must never wait
on the database): it builds one of these values and puts it on the command
queue; the storage thread later hands it to ``CallService.handle`` inside a
group-commit batch. The values are ``domain.call_commands``' (one type per
command serves the adapter, the service and the aggregate); this module keeps
the names the SIP sessions import, and the sink they put them in.
"""

from __future__ import annotations

from typing import Protocol

from domain.call_commands import (
    AnswerCall,
    AttachRecording,
    CallCommand,
    ConnectAgent,
    EndCall,
    HoldCall,
    InitiateCall,
    QueueCall,
    RecordMediaQuality,
    ResumeCall,
    RingCall,
    RouteCall,
    StartSupervision,
    StopSupervision,
    TransferCall,
)

__all__ = [
    "AnswerCall", "AttachRecording", "CallCommand", "Command", "CommandSink", "ConnectAgent",
    "EndCall", "HoldCall", "InitiateCall", "QueueCall", "RecordMediaQuality", "ResumeCall",
    "RingCall", "RouteCall", "StartSupervision", "StopSupervision", "TransferCall",
]

# The name the SIP side has always used for any of them.
Command = CallCommand


class CommandSink(Protocol):
    """Where the SIP side puts commands; must return at once, never block."""

    def put(self, command: Command) -> None: ...
