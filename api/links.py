"""OpenAPI links: what a create answers leads to the operations on what it made.

Every `POST /collection` that answers 201 with the new resource links to each
operation under `/collection/{param}` (the item, its sub-resources and
commands), `param` taken from the field of the same name in the 201 body
(`key`, `did`, `key_id`, `username`). Clients and tools (Schemathesis' stateful
phase) can then chain create -> read/update/delete without guessing ids.
Derived from the document itself, so a new route is linked without a list to
keep up to date."""

from __future__ import annotations

import re
from typing import Any

_PARAM = re.compile(r"^\{([^{}/]+)\}")


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    components = schema.get("components", {}).get("schemas", {})
    for collection, item in paths.items():
        create = item.get("post")
        created = (create or {}).get("responses", {}).get("201")
        if created is None:
            continue
        fields = _body_fields(created, components)
        links = {
            f"{method.upper()} {path}": {
                "operationId": operation["operationId"],
                "parameters": {f"path.{param}": f"$response.body#/{param}"},
                "description": f"The `{param}` of what was created.",
            }
            for path, param in _item_paths(paths, collection, fields)
            for method, operation in paths[path].items()
            if isinstance(operation, dict) and "operationId" in operation
        }
        if links:
            created["links"] = links
    return schema


def _item_paths(paths: dict[str, Any], collection: str,
                fields: frozenset[str]) -> list[tuple[str, str]]:
    """Paths under `collection/{param}`, where `param` is a field of the created body."""
    found = []
    for path in paths:
        if not path.startswith(collection + "/"):
            continue
        match = _PARAM.match(path[len(collection) + 1:])
        if match and match.group(1) in fields:
            found.append((path, match.group(1)))
    return found


def _body_fields(response: dict[str, Any], components: dict[str, Any]) -> frozenset[str]:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = components.get(ref.rsplit("/", 1)[1], {})
    return frozenset(schema.get("properties", {}))
