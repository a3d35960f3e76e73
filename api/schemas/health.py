from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class HealthPublic(BaseModel):
    """The API answers and its database answers."""

    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"
