import json
import math

import pytest

from matomo_posthog.transform.values import decimal, integer, json_safe, label, number, text


@pytest.mark.parametrize("value, expected", [
    ("  Home ", "Home"), ("", None), ("   ", None), (None, None), (False, None), (343, "343"), (3.5, "3.5"),
    (2.0, "2"), (float("nan"), None), ([1], None), ({"a": 1}, None), ("\ud800x", "?x"),
])
def test_text(value, expected):
    assert text(value) == expected


@pytest.mark.parametrize("value", ["Unknown", "unknown", "UNK", "xx", "Keyword not defined"])
def test_labels_for_undetected_values_are_absent(value):
    assert label(value) is None and label("Firefox") == "Firefox"


@pytest.mark.parametrize("value, expected", [
    (13, 13), ("13", 13), (" 13 ", 13), ("9.66", 9.66), (9.66, 9.66), ("1e3", 1000.0), ("-0", 0), (True, None),
    ("NaN", None), ("1e400", None), (float("inf"), None), ("abc", None), ("", None), (None, None), ([], None),
])
def test_number(value, expected):
    assert number(value) == expected


@pytest.mark.parametrize("value, expected", [("13", 13), (13.0, 13), ("13.5", None), (13.5, None), (True, None)])
def test_integer(value, expected):
    assert integer(value) == expected


def test_decimal_reads_matomo_coordinates():
    assert decimal("48.924000") == 48.924 and decimal(1) == 1.0 and isinstance(decimal(1), float)


def test_json_safe_makes_any_json_like_value_serialisable():
    value = {"a": [float("nan"), {"b": float("-inf")}], 1: ("x", True, None), "s": "\udcff"}
    safe = json_safe(value)
    assert safe == {"a": [None, {"b": None}], "1": ["x", True, None], "s": "?"}
    json.dumps(safe, allow_nan=False).encode("utf-8")
    assert not math.isnan(json_safe(1.5))
