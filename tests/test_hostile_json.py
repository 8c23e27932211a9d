"""jsonfile.loads_bounded: JSON from any source is bounded and never crashes (issue 11, item 7)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdss import jsonfile
from cdss.errors import InvalidInput

HOSTILE: list[tuple[str, bytes | str, str]] = [
    ("deep arrays", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("deep objects as bytes", b'{"a":' * 40 + b"1" + b"}" * 40, "nested too deeply"),
    ("deep but under the recursion limit", '{"a":' + "[" * 900 + "]" * 900 + "}", "nested too deeply"),
    ("lone surrogate escape", '{"reason_text": "\\ud800"}', "lone surrogate"),
    ("lone surrogate in a str", '{"reason_text": "\ud800"}', "lone surrogate"),
    ("lone low surrogate escape", b'{"a": "x\\udc00"}', "lone surrogate"),
    ("duplicate key", '{"seq": 1, "seq": 2}', "duplicate key 'seq'"),
    ("NaN", '{"a": NaN}', "not valid JSON"),
    ("Infinity", '{"a": -Infinity}', "not valid JSON"),
    ("huge integer", '{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ("not UTF-8", b'{"a": "\xe9"}', "not valid UTF-8"),
    ("array at the top", "[1]", "expected a JSON object"),
    ("empty", b"", "file is empty"),
    ("over the limit", '{"a": "' + "x" * 100 + '"}', "the limit is 50 bytes"),
]


@pytest.mark.parametrize(("case", "data", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_json_is_one_invalid_input_naming_the_source(
    case: str, data: bytes | str, message: str
) -> None:
    limit = 50 if case == "over the limit" else jsonfile.MAX_BYTES
    with pytest.raises(InvalidInput) as caught:
        jsonfile.loads_bounded(data, "bundle.zip:events.jsonl:7", max_bytes=limit)
    assert message in str(caught.value)
    assert caught.value.file == "bundle.zip:events.jsonl:7"


def test_a_surrogate_pair_is_text_and_accepted() -> None:
    assert jsonfile.loads_bounded(b'{"a": "\\ud83d\\ude00"}', "x") == {"a": "\N{GRINNING FACE}"}


def test_depth_limit_is_the_callers() -> None:
    text = '{"a": [[[1]]]}'
    assert jsonfile.loads_bounded(text, "x", max_depth=4) == {"a": [[[1]]]}
    with pytest.raises(InvalidInput, match="the limit is 3 levels"):
        jsonfile.loads_bounded(text, "x", max_depth=3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=4))
def test_every_shallow_object_reads_back_as_itself(value: dict[str, Any]) -> None:
    text = json.dumps(value)
    depth_bound = text.count("{") + text.count("[")
    assert jsonfile.loads_bounded(text, "x", max_depth=max(depth_bound, 1)) == value
    assert jsonfile.loads_bounded(text.encode(), "x", max_depth=max(depth_bound, 1)) == value


@given(st.binary(max_size=200))
def test_any_bytes_either_parse_or_raise_invalid_input(data: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        jsonfile.loads_bounded(data, "x")
