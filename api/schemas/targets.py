"""Where a call can go (queue, IVR menu, number, recording, repeat, hang up), on the wire.

A target is one object per kind (a `oneOf` on `kind`), so the document states
what each kind's `value` must be, and each place that takes a target (IVR
options, a menu's default action, a number's destination, a queue's overflow)
lists only the kinds the domain allows there: a schema-valid target is one the
domain accepts, short of naming a queue or menu that does not exist (404)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain import addressing
from domain.addressing import Target

TargetKindName = Literal["queue", "ivr", "number", "recording", "repeat", "hangup"]
KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"  # domain.addressing.KEY_PATTERN
SKILL_PATTERN = KEY_PATTERN  # domain.skills.SKILL_PATTERN
DIALLABLE_PATTERN = r"^\+?[0-9*#]{1,32}$"  # domain.addressing.DIALLABLE_PATTERN
# The domain's, anchored (pydantic searches): names a worker can find, nothing else.
RECORDING_PATTERN = rf"^(?:{addressing.RECORDING_PATTERN.pattern})$"


class StrictBody(BaseModel):
    """A request body: unknown fields are refused (422), never silently ignored,
    and values are taken as the document types them (strict): `false` is not a
    penalty of 0, `0` is not `false`, a number is not a date-time."""

    model_config = ConfigDict(extra="forbid", strict=True)


class QueueTarget(StrictBody):
    kind: Literal["queue"]
    value: str = Field(pattern=KEY_PATTERN, examples=["sales"],
                       description="The key (or id) of an existing queue.")


class IvrTarget(StrictBody):
    kind: Literal["ivr"]
    value: str = Field(pattern=KEY_PATTERN, examples=["main"],
                       description="The key (or id) of an existing IVR menu.")


class NumberTarget(StrictBody):
    kind: Literal["number"]
    value: str = Field(pattern=DIALLABLE_PATTERN, examples=["+3225550199"],
                       description="A diallable number, resolved by the dialplan.")


class RecordingTarget(StrictBody):
    kind: Literal["recording"]
    value: str = Field(pattern=RECORDING_PATTERN, max_length=128, examples=["closed.wav"],
                       description="The recording's name: a WAV file (16-bit PCM, A-law "
                       "or mu-law) in the tenant's <media>/tenants/<tenant>/prompts directory "
                       "of each worker (the default tenant's also in <media>/prompts). The "
                       "caller hears it, then the call ends (docs/callcentre.md).")


class RepeatTarget(StrictBody):
    kind: Literal["repeat"]
    value: None = Field(default=None, description="None: play the current menu again.")


class HangupTarget(StrictBody):
    kind: Literal["hangup"]
    value: None = Field(default=None, description="None: end the call.")


AnyTarget = (QueueTarget | IvrTarget | NumberTarget | RecordingTarget | RepeatTarget
             | HangupTarget)
TargetIn = Annotated[AnyTarget, Field(discriminator="kind")]
# domain.ivr.OPTION_KINDS
IvrOption = Annotated[QueueTarget | NumberTarget | IvrTarget | RepeatTarget | HangupTarget,
                      Field(discriminator="kind")]
# domain.ivr.DEFAULT_KINDS
IvrDefault = Annotated[QueueTarget | NumberTarget | IvrTarget | HangupTarget,
                       Field(discriminator="kind")]
# domain.numbers.DESTINATION_KINDS
NumberDestination = Annotated[IvrTarget | QueueTarget | NumberTarget, Field(discriminator="kind")]
# domain.queue.OVERFLOW_KINDS
QueueOverflow = Annotated[QueueTarget | NumberTarget | RecordingTarget,
                          Field(discriminator="kind")]


class TargetPublic(BaseModel):
    kind: TargetKindName
    value: str | None = Field(description="Queue or menu id, number, or recording name.")

    @classmethod
    def of(cls, target: Target | None) -> TargetPublic | None:
        return None if target is None else cls(kind=target.kind.value, value=target.value)
