"""IVR menus: prompt, DTMF options (queue / number / submenu / repeat / hang up),
timeout, retries and default action. Read from the aggregates (configuration)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path

from api.auth.audit import audited, body_key, path_key
from api.auth.dependencies import Tenant, require
from api.auth.permissions import P
from api.db import Pool
from api.problems import problem_responses
from api.routes import history
from api.routes.commands import Service, execute, now, target_of
from api.schemas.config import IvrMenuCreate, IvrMenuPublic, IvrMenusPublic, IvrMenuUpdate
from api.schemas.events import TimelinePublic
from api.schemas.targets import KEY_PATTERN, IvrOption
from domain.addressing import Target
from domain.ivr import IvrMenu

TAG = {"name": "ivr-menus", "description": "Voice menus: what each key press does."}
router = APIRouter(prefix="/v1/ivr-menus", tags=["ivr-menus"])
MENU = path_key("key", IvrMenu.id_for)  # the menu a command acts on
NEW_MENU = body_key("key", IvrMenu.id_for)  # the one a create makes

MenuKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The menu's key.")]
DigitPath = Annotated[str, Path(pattern=r"^[0-9*#A-D]$", description="One DTMF key.")]


def _options(options: dict[str, IvrOption], tenant: str) -> dict[str, Target]:
    return {digit: target_of(t, f"options.{digit}", tenant) for digit, t in options.items()}


def _references(options: dict[str, Target] | None, default: Target | None
                ) -> dict[str, Target | None]:
    """The targets a menu body names, by the field naming each (for a 422 on it)."""
    named = {f"options.{digit}.value": target for digit, target in (options or {}).items()}
    return {**named, "default_action.value": default}


@router.post("", status_code=201, summary="Create an IVR menu",
             dependencies=[audited(P.CONFIG_WRITE, "ivr_menus.create", NEW_MENU)],
             responses=problem_responses(409, 422))
async def create_menu(body: IvrMenuCreate, tenant: Tenant, service: Service) -> IvrMenuPublic:
    options = _options(body.options, tenant)
    default = target_of(body.default_action, "default_action", tenant)
    menu = await execute(lambda: service.create_ivr_menu(
        body.key, body.name, body.prompt, occurred_at=now(), options=options,
        timeout_s=body.timeout_s, max_retries=body.max_retries, default_action=default),
        field="options", references=_references(options, default))
    return IvrMenuPublic.of(menu)


@router.get("", summary="List IVR menus",
            dependencies=[require(P.CONFIG_READ)])
async def list_menus(service: Service) -> IvrMenusPublic:
    menus = await execute(lambda: [service.get(IvrMenu, i) for i in service.ids_of(IvrMenu)])
    data = [IvrMenuPublic.of(m) for m in sorted(menus, key=lambda m: m.key)]
    return IvrMenusPublic(data=data, count=len(data))


@router.get("/{key}", summary="Get an IVR menu", responses=problem_responses(404, 422),
            dependencies=[require(P.CONFIG_READ)])
async def read_menu(key: MenuKey, tenant: Tenant, service: Service) -> IvrMenuPublic:
    return IvrMenuPublic.of(await execute(
        lambda: service.get(IvrMenu, IvrMenu.id_for(key, tenant), key)))


@router.patch("/{key}", summary="Change an IVR menu", responses=problem_responses(404, 422),
              dependencies=[audited(P.CONFIG_WRITE, "ivr_menus.update", MENU)])
async def update_menu(key: MenuKey, tenant: Tenant, body: IvrMenuUpdate,
                      service: Service) -> IvrMenuPublic:
    at = now()
    options = None if body.options is None else _options(body.options, tenant)
    default = None if body.default_action is None else target_of(body.default_action,
                                                                   "default_action", tenant)

    def change(menu: IvrMenu) -> None:
        _settings(menu, body, at)
        if default is not None:
            menu.set_default_action(default, at)
        if options is not None:
            _replace_options(menu, options, at)

    targets = [*(options or {}).values(), *([default] if default else [])]
    return IvrMenuPublic.of(await execute(lambda: service.configure_ivr_menu(
        IvrMenu.id_for(key, tenant), change, targets), field="options",
        references=_references(options, default)))


@router.put("/{key}/options/{digit}", summary="Set what a key does",
            dependencies=[audited(P.CONFIG_WRITE, "ivr_menus.option.set", MENU)],
            responses=problem_responses(404, 422))
async def set_option(key: MenuKey, tenant: Tenant, digit: DigitPath, body: IvrOption,
                     service: Service) -> IvrMenuPublic:
    target = target_of(body, "value", tenant)
    return IvrMenuPublic.of(await execute(lambda: service.configure_ivr_menu(
        IvrMenu.id_for(key, tenant), lambda m: m.set_option(digit, target, now()), [target]),
        field="kind", references={"value": target}))


@router.delete("/{key}/options/{digit}", summary="Remove a key's action",
               dependencies=[audited(P.CONFIG_WRITE, "ivr_menus.option.remove", MENU)],
               responses=problem_responses(404, 422))
async def remove_option(key: MenuKey, tenant: Tenant, digit: DigitPath,
                        service: Service) -> IvrMenuPublic:
    return IvrMenuPublic.of(await execute(lambda: service.configure_ivr_menu(
        IvrMenu.id_for(key, tenant), lambda m: m.remove_option(digit, now()))))


def _settings(menu: IvrMenu, body: IvrMenuUpdate, at: datetime) -> None:
    if body.prompt is not None:
        menu.set_prompt(body.prompt, at)
    if body.timeout_s is not None:
        menu.set_timeout(body.timeout_s, at)
    if body.max_retries is not None:
        menu.set_max_retries(body.max_retries, at)


def _replace_options(menu: IvrMenu, options: dict[str, Target], at: datetime) -> None:
    for digit in sorted(set(menu.options) - set(options)):
        menu.remove_option(digit, at)
    for digit, target in sorted(options.items()):
        menu.set_option(digit, target, at)


@router.get("/{key}/timeline", summary="Get an IVR menu's events in order",
            description=history.TIMELINE_DESCRIPTION.format(what="IVR menu"),
            dependencies=[require(P.HISTORY_READ)], responses=problem_responses(404, 422))
async def read_timeline(pool: Pool, key: MenuKey, tenant: Tenant,
                        after: history.After = 0,
                        limit: history.Limit = history.DEFAULT_LIMIT) -> TimelinePublic:
    return await history.timeline(pool, tenant, "ivrmenu", IvrMenu.id_for(key, tenant), key,
                                  after, limit)
