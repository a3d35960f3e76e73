"""The call centre's configuration commands: IVR menus, numbers and dialplans, the
targets they and queues name, and skill sets. Part of CallCentreService (same
store, same unit of work); kept apart from the live call flow of
application/callcentre.py, as domain/queue_config.py is from queue_flow.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.unit import NotFound, Unit, kind_name
from domain.addressing import DEFAULT_TENANT, Target, TargetKind
from domain.agent import Agent
from domain.ivr import IvrMenu
from domain.numbers import Dialplan, DialRule, Number
from domain.queue import Queue
from domain.skills import check_skills

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)


class UnknownTarget(NotFound):
    """A target names a queue or IVR menu that does not exist. A ``NotFound``, but
    of something the command refers to, not of what it acts on: the API answers
    422 on the field naming it, and 404 only for the thing in the URL path."""

    def __init__(self, kind: str, ident: object, target: Target) -> None:
        super().__init__(kind, ident)
        self.target = target


def check_target(unit: Unit, target: Target) -> None:
    """A queue or IVR target must name an existing aggregate (UnknownTarget)."""
    kinds: dict[TargetKind, type[Aggregate]] = {TargetKind.QUEUE: Queue,
                                                 TargetKind.IVR: IvrMenu}
    cls = kinds.get(target.kind)
    if cls is not None and unit.find(cls, target.aggregate_id) is None:
        raise UnknownTarget(kind_name(cls), target.aggregate_id, target)


class ConfigurationCommands:
    """IVR menus, numbers, dialplans: the commands CallCentreService gets from here.
    What they need of the service is declared below and defined there."""

    @property
    def new_tenant(self) -> str:
        raise NotImplementedError

    def _run(self, command: Callable[[Unit], T]) -> T:
        raise NotImplementedError

    def _change(self, kind: type[A], aggregate_id: UUID, change: Callable[[A], None]) -> A:
        """Load one aggregate, apply ``change`` to it, save: the plain command."""
        def command(unit: Unit) -> A:
            aggregate = unit.get(kind, aggregate_id)
            change(aggregate)
            return aggregate
        return self._run(command)

    def create_ivr_menu(self, key: str, name: str, prompt: str, *, occurred_at: datetime,
                        options: Mapping[str, Target] | None = None,
                        **settings: Any) -> IvrMenu:
        """``settings``: timeout_s, max_retries, default_action."""
        def command(unit: Unit) -> IvrMenu:
            menu = unit.add(IvrMenu.create(key, name, prompt, occurred_at=occurred_at,
                                           tenant=self.new_tenant, **settings))
            for target in (*(options or {}).values(), menu.default_action):
                check_target(unit, target)
            for digit, target in sorted((options or {}).items()):
                menu.set_option(digit, target, occurred_at)
            return menu
        return self._run(command)

    def configure_ivr_menu(self, menu_id: UUID, change: Callable[[IvrMenu], None],
                           targets: Sequence[Target] = ()) -> IvrMenu:
        """Apply menu commands together; ``targets`` they introduce must exist."""
        def command(unit: Unit) -> IvrMenu:
            menu = unit.get(IvrMenu, menu_id)  # first: a missing menu is the answer
            for target in targets:
                check_target(unit, target)
            change(menu)
            return menu
        return self._run(command)

    def create_number(self, did: str, destination: Target, *, occurred_at: datetime,
                      label: str = "") -> Number:
        def command(unit: Unit) -> Number:
            check_target(unit, destination)
            return unit.add(Number.create(did, destination, occurred_at=occurred_at,
                                          label=label, tenant=self.new_tenant))
        return self._run(command)

    def configure_number(self, number_id: UUID, change: Callable[[Number], None],
                         targets: Sequence[Target] = ()) -> Number:
        def command(unit: Unit) -> Number:
            number = unit.get(Number, number_id)  # first: a missing number is the answer
            for target in targets:
                check_target(unit, target)
            change(number)
            return number
        return self._run(command)

    def create_dialplan(self, key: str, name: str, rules: Sequence[DialRule] = (), *,
                        occurred_at: datetime) -> Dialplan:
        def command(unit: Unit) -> Dialplan:
            plan = unit.add(Dialplan.create(key, name, occurred_at=occurred_at,
                                            tenant=self.new_tenant))
            for rule in rules:
                plan.add_rule(rule, occurred_at)
            return plan
        return self._run(command)

    def configure_dialplan(self, plan_id: UUID, change: Callable[[Dialplan], None]) -> Dialplan:
        return self._change(Dialplan, plan_id, change)


def replace_skills(agent: Agent, skills: Mapping[str, int], occurred_at: datetime) -> None:
    """Make the agent's skills exactly ``skills`` (one event per difference)."""
    wanted = check_skills(skills)
    for skill in sorted(set(agent.skills) - set(wanted)):
        agent.remove_skill(skill, occurred_at)
    for skill, level in sorted(wanted.items()):
        agent.set_skill(skill, level, occurred_at)


def require_skills(queue: Queue, skills: Mapping[str, int], occurred_at: datetime) -> None:
    """Make the queue's required skills exactly ``skills`` (one event per difference)."""
    wanted = check_skills(skills)
    for skill in sorted(set(queue.required_skills) - set(wanted)):
        queue.drop_skill_requirement(skill, occurred_at)
    for skill, level in sorted(wanted.items()):
        queue.require_skill(skill, level, occurred_at)


def parse_target(kind: str, value: str | None, tenant: str = DEFAULT_TENANT) -> Target:
    """A target from untrusted parts, where a queue or IVR menu may be named by
    its key (in ``tenant``) instead of its id (the API's convenience)."""
    if kind in (TargetKind.QUEUE, TargetKind.IVR) and value is not None:
        try:
            UUID(value)
        except ValueError:
            aggregate = Queue if kind == TargetKind.QUEUE else IvrMenu
            value = str(aggregate.id_for(value, tenant))
    return Target.parse(kind, value)

