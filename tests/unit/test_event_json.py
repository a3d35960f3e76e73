"""An event's data as jsonb (projections/envelope.py, jsonb): orjson gives the JSON value the
standard library gives, for every value an event's data holds."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.envelope import jsonb

_PLAIN = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text())
_VALUES = st.recursive(_PLAIN, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12)


def dumped(data: Any) -> Any:
    wrapped = jsonb(data)
    assert wrapped.dumps is not None
    return json.loads(wrapped.dumps(wrapped.obj))


@settings(deadline=None)
@given(st.dictionaries(st.text(), _VALUES, max_size=6))
def test_the_data_reads_back_as_the_standard_library_writes_it(data: dict[str, Any]) -> None:
    assert dumped(data) == json.loads(json.dumps(data))


def test_a_read_only_mapping_is_written_as_an_object() -> None:
    assert dumped(MappingProxyType({"tenant": "acme", "inner": MappingProxyType({"a": 1})})) \
        == {"tenant": "acme", "inner": {"a": 1}}


def test_a_value_json_cannot_hold_is_an_error() -> None:
    with pytest.raises(TypeError):
        dumped({"at": {1, 2}})
