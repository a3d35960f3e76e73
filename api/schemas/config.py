"""IVR menus, numbers and dialplans: configuration aggregates, read from the
aggregates themselves (small, and every change is an event)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.targets import (
    DIALLABLE_PATTERN,
    KEY_PATTERN,
    HangupTarget,
    IvrDefault,
    IvrOption,
    NumberDestination,
    StrictBody,
    TargetPublic,
)
from api.schemas.text import Text, VisibleText
from domain.ivr import IvrMenu
from domain.numbers import MAX_RULES, Dialplan, DialRule, Number

Digit = Annotated[str, StringConstraints(pattern=r"^[0-9*#A-D]$")]
Prompt = Annotated[VisibleText, Field(min_length=1, max_length=500, description="Prompt to play.")]
MenuTimeout = Annotated[float, Field(ge=1, le=60, description="Seconds to wait for a key.")]
Retries = Annotated[int, Field(ge=0, le=10, description=(
    "Replays after an invalid key or a timeout before the default action runs."))]
DID_PATTERN = r"^\+?[0-9]{2,20}$"
# One per DTMF key; a key outside the pattern is refused, not ignored.
Options = Annotated[dict[Digit, IvrOption], Field(
    max_length=16, json_schema_extra={"additionalProperties": False})]
Label = Annotated[Text, Field(max_length=200)]


class IvrMenuCreate(StrictBody):
    key: str = Field(pattern=KEY_PATTERN)
    name: VisibleText = Field(min_length=1, max_length=200)
    prompt: Prompt
    timeout_s: MenuTimeout = 5.0
    max_retries: Retries = 2
    default_action: IvrDefault = Field(default_factory=lambda: HangupTarget(kind="hangup"),
                                     description="What happens when retries run out.")
    options: Options = Field(default_factory=dict, description=(
        "DTMF key -> action: a queue, a number, a submenu (`ivr`), `repeat` or `hangup`."))


class IvrMenuUpdate(StrictBody):
    """Fields to change; absent fields stay. `options` replaces the whole set."""

    prompt: Prompt | None = None
    timeout_s: MenuTimeout | None = None
    max_retries: Retries | None = None
    default_action: IvrDefault | None = None
    options: Options | None = None


class IvrMenuPublic(BaseModel):
    id: UUID
    key: str
    name: str
    prompt: str
    timeout_s: float
    max_retries: int
    default_action: TargetPublic
    options: dict[str, TargetPublic]
    version: int

    @classmethod
    def of(cls, menu: IvrMenu) -> IvrMenuPublic:
        return cls(id=menu.id, key=menu.key, name=menu.name, prompt=menu.prompt,
                   timeout_s=menu.timeout_s, max_retries=menu.max_retries,
                   default_action=TargetPublic(kind=menu.default_action.kind.value,
                                               value=menu.default_action.value),
                   options={d: TargetPublic(kind=t.kind.value, value=t.value)
                            for d, t in sorted(menu.options.items())},
                   version=menu.version)


class IvrMenusPublic(BaseModel):
    data: list[IvrMenuPublic]
    count: int


class NumberCreate(StrictBody):
    did: str = Field(pattern=DID_PATTERN, description="The inbound number, e.g. `+3225550100`.")
    destination: NumberDestination = Field(description="An IVR menu, a queue or a number.")
    label: Label = ""


class NumberUpdate(StrictBody):
    destination: NumberDestination | None = None
    label: Label | None = None
    active: bool | None = Field(default=None, description="false deactivates, true reactivates.")


class NumberPublic(BaseModel):
    id: UUID
    did: str
    label: str
    destination: TargetPublic
    active: bool = Field(description="An inactive number routes nowhere.")
    version: int

    @classmethod
    def of(cls, number: Number) -> NumberPublic:
        target = number.destination
        return cls(id=number.id, did=number.did, label=number.label,
                   destination=TargetPublic(kind=target.kind.value, value=target.value),
                   active=number.active, version=number.version)


class NumbersPublic(BaseModel):
    data: list[NumberPublic]
    count: int


MatchKindName = Literal["exact", "prefix", "regex"]
# domain.numbers: a template is a sip:/sips: URI whose only braces are its placeholders.
_URI = r"^sips?:([^\s\x00{{}}]|\{{({names})\}})+$"
_TEMPLATE = "sip:/sips: URI; placeholders: {}."


def _template(names: str, described: str) -> Any:
    return Field(max_length=300, pattern=_URI.format(names=names),
                 examples=["sip:{number}@trunk.example.com"],
                 description=_TEMPLATE.format(described))


class ExactRule(StrictBody):
    kind: Literal["exact"]
    pattern: str = Field(pattern=DIALLABLE_PATTERN, description="The number.")
    uri_template: str = _template("number", "{number}")


class PrefixRule(StrictBody):
    kind: Literal["prefix"]
    pattern: str = Field(pattern=r"^(\+?[0-9*#]{1,32})?$",
                         description="The number's start (\"\" matches all).")
    uri_template: str = _template("number|rest", "{number}, {rest} (after the prefix)")


class RegexRule(StrictBody):
    """A Python regular expression, matched with fullmatch. The document cannot
    say which texts compile, nor how many groups they have: a pattern that does
    not compile, or a template naming a group it lacks, is 422."""

    kind: Literal["regex"]
    pattern: Text = Field(max_length=200, description="A Python regular expression (fullmatch).")
    uri_template: str = _template("number|[0-9]+", "{number}, {0}..{N} (the pattern's groups)")


class _Named(StrictBody):
    name: str = Field(pattern=KEY_PATTERN)


class _Placed(StrictBody):
    position: int | None = Field(default=None, ge=0, le=MAX_RULES, description=(
        "0-based place in the plan; absent: last for a new rule, unchanged otherwise."))


class ExactRuleCreate(ExactRule, _Named):
    pass


class PrefixRuleCreate(PrefixRule, _Named):
    pass


class RegexRuleCreate(RegexRule, _Named):
    pass


class ExactRuleSet(ExactRule, _Placed):
    pass


class PrefixRuleSet(PrefixRule, _Placed):
    pass


class RegexRuleSet(RegexRule, _Placed):
    pass


DialRuleCreate = Annotated[ExactRuleCreate | PrefixRuleCreate | RegexRuleCreate,
                           Field(discriminator="kind")]
DialRuleSet = Annotated[ExactRuleSet | PrefixRuleSet | RegexRuleSet, Field(discriminator="kind")]


class DialplanCreate(StrictBody):
    key: str = Field(pattern=KEY_PATTERN)
    name: VisibleText = Field(min_length=1, max_length=200)
    rules: list[DialRuleCreate] = Field(default_factory=list, max_length=MAX_RULES, description=(
        f"Tried in order; at most {MAX_RULES}."))


class DialRulePublic(BaseModel):
    name: str
    kind: MatchKindName
    pattern: str
    uri_template: str

    @classmethod
    def of(cls, rule: DialRule) -> DialRulePublic:
        return cls(name=rule.name, kind=rule.kind.value, pattern=rule.pattern,
                   uri_template=rule.uri_template)


class DialplanPublic(BaseModel):
    id: UUID
    key: str
    name: str
    rules: list[DialRulePublic]
    version: int

    @classmethod
    def of(cls, plan: Dialplan) -> DialplanPublic:
        return cls(id=plan.id, key=plan.key, name=plan.name,
                   rules=[DialRulePublic.of(r) for r in plan.rules], version=plan.version)


class DialplansPublic(BaseModel):
    data: list[DialplanPublic]
    count: int


class Resolution(BaseModel):
    number: str
    uri: str | None = Field(description="The first matching rule's URI; null when none matches.")
