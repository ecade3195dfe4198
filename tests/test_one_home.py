"""Small concepts with one home: stream names, rows as columns, the stored envelope's
shape and the error hierarchy. No database, no servers."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from ledger.columns import columns, named_columns
from ledger.errors import LedgerError
from ledger.records import StoredEnvelope
from schemas import (
    EventEnvelope,
    EventMetadata,
    ItemDeleted,
    LocationAttributes,
    LocationUpdated,
    StockAdded,
    item_stream,
    location_stream,
    parse_stream,
    stream_of,
)


def test_a_stream_name_reads_back_as_what_it_is_about():
    assert item_stream(42) == "item-42" and location_stream(7) == "location-7"
    assert parse_stream(item_stream(42)) == ("item", 42)
    assert parse_stream(location_stream(7)) == ("location", 7)


@pytest.mark.parametrize("name", ["item", "item-", "item-x", "job-3", "location-4-5", ""])
def test_a_name_that_is_not_a_stream_is_refused(name):
    with pytest.raises(ValueError):
        parse_stream(name)


def test_each_event_belongs_to_the_stream_its_helpers_spell():
    attributes = LocationAttributes(location_name="Van")
    assert stream_of(StockAdded(item_id=3, location_id=9, quantity=1)) == item_stream(3)
    assert stream_of(ItemDeleted(item_id=3)) == item_stream(3)
    assert stream_of(LocationUpdated(location_id=9, attributes=attributes, changed=[])) == location_stream(9)


def test_rows_become_columns_and_no_rows_as_many_empty_columns_as_named():
    assert columns([(1, "a"), (2, "b")]) == [[1, 2], ["a", "b"]]
    assert columns([], 3) == [[], [], []]
    assert named_columns(("ids", "names"), []) == {"ids": [], "names": []}
    assert named_columns(("ids", "names"), [(1, "a")]) == {"ids": [1], "names": ["a"]}


def test_rows_of_different_lengths_are_refused_not_cut():
    with pytest.raises(ValueError):
        columns([(1, "a"), (2,)])


def test_a_stored_envelope_is_the_event_envelope_with_data_and_metadata_as_stored():
    fields = [f.name for f in msgspec.structs.fields(EventEnvelope)]
    assert [f.name for f in msgspec.structs.fields(StoredEnvelope)] == fields
    event, metadata = StockAdded(item_id=3, location_id=9, quantity=1), EventMetadata(user_name="ann")
    common = dict(event_id=uuid.uuid4(), position=5, org_id=1, stream=item_stream(3), version=1, type="Add",
                  recorded_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), prev_hash="0" * 64, hash="f" * 64)
    decoded = EventEnvelope(**common, data=event, metadata=metadata)
    stored = StoredEnvelope(**common, data=msgspec.Raw(msgspec.json.encode(event)),
                            metadata=msgspec.Raw(msgspec.json.encode(metadata)))
    assert msgspec.json.encode(stored) == msgspec.json.encode(decoded)


def _every_error_class() -> list[type[LedgerError]]:
    for package in ("api", "consumers", "ledger", "projections", "schemas"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            importlib.import_module(module.name)
    found, todo = [], [LedgerError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_ledger_error_is_defined_in_the_one_hierarchy():
    elsewhere = {f"{cls.__module__}.{cls.__qualname__}" for cls in _every_error_class()
                 if cls.__module__ not in ("ledger.errors", "api.errors") and not cls.__module__.startswith("tests.")}
    assert elsewhere == set()


def test_no_two_error_classes_define_the_same_code():
    # internal_error is every unexpected failure's code, the base's and InvariantViolated's alike.
    codes: dict[str, str] = {}
    for cls in _every_error_class():
        code = cls.__dict__.get("code")
        if code is None or code == LedgerError.code or cls.__module__.startswith("tests."):
            continue
        assert code not in codes, f"{cls.__qualname__} and {codes[code]} both define {code}"
        codes[code] = cls.__qualname__
    assert codes["not_caught_up"] == "NotCaughtUp"
