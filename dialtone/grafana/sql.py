"""The query of Grafana's PostgreSQL datasource, as a grafana-foundation-sdk variant.

The SDK has typed queries for Prometheus, Loki, Tempo and the cloud datasources,
but none for the SQL datasources: this is the PostgreSQL one, with the fields
Grafana's code editor saves (``rawSql``, ``format``, ``rawQuery``, ``editorMode``),
registered with the SDK's runtime so that ``Dashboard.from_json`` reads it back
typed rather than as an opaque bag.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

# Grafana 10.x+ name of the core PostgreSQL datasource plugin.
POSTGRES_TYPE = "grafana-postgresql-datasource"

Format = Literal["table", "time_series"]


class SqlQuery(cogvariants.Dataquery):
    """One PostgreSQL query of a panel (``rawSql`` in code mode)."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: Format,
                 datasource: dashboard.DataSourceRef | None = None) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format = fmt
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id, "rawSql": self.raw_sql, "format": self.format,
            "rawQuery": True, "editorMode": "code"}
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        source = data.get("datasource")
        return cls(str(data["refId"]), str(data["rawSql"]), data["format"],
                   dashboard.DataSourceRef.from_json(source) if source else None)


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of a ``SqlQuery``, for the SDK's ``with_target``."""

    def __init__(self, raw_sql: str, fmt: Format = "table", ref_id: str = "A") -> None:
        self._query = SqlQuery(ref_id, raw_sql, fmt)

    def datasource(self, ref: dashboard.DataSourceRef) -> Self:
        self._query.datasource = ref
        return self

    def build(self) -> SqlQuery:
        return self._query


def register() -> None:
    """Teach the SDK's runtime to decode PostgreSQL targets (idempotent)."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=POSTGRES_TYPE, from_json_hook=SqlQuery.from_json))
