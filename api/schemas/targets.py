"""Where a call can go (queue, IVR menu, number, recording, repeat, hang up), on the wire."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.text import Text
from domain.addressing import Target

TargetKindName = Literal["queue", "ivr", "number", "recording", "repeat", "hangup"]
KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"  # domain.addressing.KEY_PATTERN
SKILL_PATTERN = KEY_PATTERN  # domain.skills.SKILL_PATTERN


class Body(BaseModel):
    """A request body: unknown fields are refused (422), never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class TargetIn(Body):
    """A destination. `value`: for `queue` and `ivr` the key (or id) of an existing
    queue or menu; for `number` a diallable number; for `recording` its name;
    none for `repeat` and `hangup`."""

    kind: TargetKindName
    value: Text | None = Field(default=None, max_length=128, examples=["sales"])


class TargetPublic(BaseModel):
    kind: TargetKindName
    value: str | None = Field(description="Queue or menu id, number, or recording name.")

    @classmethod
    def of(cls, target: Target | None) -> TargetPublic | None:
        return None if target is None else cls(kind=target.kind.value, value=target.value)
