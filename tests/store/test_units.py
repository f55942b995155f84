"""Pure parts of the store: status derivation, ids, backoff, URLs, packaging of migrations."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import o2sms
from o2sms.receipts import DeliveryReceipt, ReceiptStat, clean_message_id
from o2sms.smpp.constants import MessageState
from o2sms.store import (
    FINAL_STATUSES,
    PART_SEVERITY,
    MessageStatus,
    backoff_delay,
    derive_status,
    new_message_id,
    store_url,
)
from o2sms.store.engine import MIGRATIONS_DIR
from o2sms.store.messages import _receipt_detail, _receipt_detail_text, receipt_fingerprint
from o2sms.store.models import CROCKFORD, part_status_for
from o2sms.store.rows import insert_sql, json_scalar, json_text, numbered, update_sql
from o2sms.store.schema import from_sqlite_text, part_keys, sqlite_text

S = MessageStatus


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([S.DELIVERED], S.DELIVERED),
        ([S.DELIVERED, S.DELIVERED, S.DELIVERED], S.DELIVERED),
        ([S.DELIVERED, S.SUBMITTED], S.SUBMITTED),  # still waiting for part 2
        ([S.UNDELIVERED, S.SUBMITTED], S.SUBMITTED),  # one status change, at the end
        ([S.DELIVERED, S.UNDELIVERED], S.UNDELIVERED),
        ([S.DELIVERED, S.ACCEPTED], S.ACCEPTED),
        ([S.EXPIRED, S.REJECTED, S.DELIVERED], S.REJECTED),
        ([S.UNKNOWN, S.DELETED], S.DELETED),
        ([S.SUBMITTED, S.FAILED], S.FAILED),  # a part never went out: failed at once
        ([], S.SUBMITTED),
    ],
)
def test_message_status_is_derived_from_its_parts(
    parts: list[MessageStatus], expected: MessageStatus
) -> None:
    assert derive_status(parts) is expected


def test_severity_lists_every_reported_state_once_worst_first() -> None:
    assert PART_SEVERITY[0] is S.FAILED
    assert PART_SEVERITY[-1] is S.DELIVERED
    assert len(set(PART_SEVERITY)) == len(PART_SEVERITY)
    assert set(PART_SEVERITY) == (FINAL_STATUSES - {S.CANCELLED}) | {S.ACCEPTED}


def test_every_final_receipt_stat_maps_to_a_part_status() -> None:
    for stat in ReceiptStat:
        status = part_status_for(stat)
        assert (status is None) == (stat is ReceiptStat.ENROUTE)
    assert part_status_for(ReceiptStat.DELIVRD) is S.DELIVERED


def test_message_ids_are_ulids_sorted_by_time() -> None:
    ids = [new_message_id() for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(len(i) == 26 and i.isalnum() and i.isupper() for i in ids)
    # the first 10 characters are the millisecond clock: never decreasing
    assert [i[:10] for i in ids] == sorted(i[:10] for i in ids)


@given(st.integers(0, 2**48 - 1), st.binary(min_size=16, max_size=16))
def test_message_ids_are_the_ulid_of_clock_and_randomness(millis: int, random: bytes) -> None:
    # digit by digit: ten of the 48-bit millisecond clock, then 16 random ones (80 bits)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("o2sms.store.models.time.time_ns", lambda: millis * 1_000_000 + 999_999)
        patch.setattr("o2sms.store.models.os.urandom", lambda n: random[:n])
        made = new_message_id()
    value = millis << 80 | sum((b & 31) << (5 * i) for i, b in enumerate(reversed(random)))
    assert made == "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, base=2.0, cap=60.0) for n in range(1, 8)] == [
        2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0,
    ]  # fmt: skip
    assert backoff_delay(10_000, base=1.0, cap=300.0) == 300.0


def test_store_url_fills_in_the_async_drivers(tmp_path: Path) -> None:
    assert store_url(tmp_path / "a.db").drivername == "sqlite+aiosqlite"
    assert store_url("relative.db").database == str(Path("relative.db").resolve())
    assert store_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert store_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert store_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    with pytest.raises(ValueError, match="in-memory"):
        store_url("sqlite://")
    with pytest.raises(ValueError, match="unsupported"):
        store_url("mysql://u@h/db")


def test_migrations_ship_inside_the_package() -> None:
    # hatch packages src/o2sms whole, so an installed wheel carries these files too
    assert MIGRATIONS_DIR.is_relative_to(Path(o2sms.__file__).parent)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("r*.py")) == [
        "r0001_initial.py",
        "r0002_webhooks.py",
        "r0003_claim_order.py",
        "r0004_partial_indexes.py",
        "r0005_resume.py",
        "r0006_fillfactor.py",
        "r0007_error_code_bigint.py",
    ]


def test_driver_statements_number_placeholders_and_check_columns() -> None:
    assert numbered("UPDATE t SET a = ?, b = ? WHERE id = ?") == (
        "UPDATE t SET a = $1, b = $2 WHERE id = $3"
    )
    assert numbered("SELECT 1") == "SELECT 1"
    assert insert_sql(part_keys, ("key", "message_id", "part_no"), on_conflict_nothing=True) == (
        "INSERT INTO part_keys (key, message_id, part_no) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
    )
    with pytest.raises(KeyError):
        insert_sql(part_keys, ("key", "no_such_column"))
    assert update_sql(part_keys, ("part_no",), ("key", "message_id"), also="x = NULL") == (
        "UPDATE part_keys SET part_no = ?, x = NULL WHERE key = ? AND message_id = ?"
    )
    with pytest.raises(KeyError):
        update_sql(part_keys, ("part_no",), ("no_such_column",))


def test_sqlite_times_are_stored_as_sqlalchemys_datetime_text() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    at = datetime(2026, 11, 26, 9, 0, 1, 5, tzinfo=timezone(timedelta(hours=2)))
    assert sqlite_text(at) == "2026-11-26 07:00:01.000005"
    assert from_sqlite_text("2026-11-26 07:00:01.000005") == at.astimezone(UTC)
    assert from_sqlite_text("2026-11-26 07:00:01") == datetime(2026, 11, 26, 7, 0, 1, tzinfo=UTC)
    assert from_sqlite_text("2026-11-26 07:00:01").tzinfo is UTC  # type: ignore[union-attr]
    assert from_sqlite_text("2026-11-26") == datetime(2026, 11, 26, tzinfo=UTC)  # a date alone
    # text with an offset of its own (not written by us) is converted, not relabelled
    assert from_sqlite_text("2026-11-26 09:00:01+02:00") == datetime(
        2026, 11, 26, 7, 0, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="Invalid isoformat"):
        from_sqlite_text("not a time")
    with pytest.raises(ValueError, match="naive"):
        sqlite_text(datetime(2026, 11, 26))


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS | st.sampled_from(list(MessageStatus)),  # StrEnum members, as the store has
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text() | st.integers() | st.floats(), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_json_text_is_json_dumps_byte_for_byte(value: object) -> None:
    # receipt fingerprints are hashes of this text: a different spelling would let a repeated
    # receipt through as new
    assert json_text(value) == json.dumps(value)


def test_json_text_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text({"at": object()})


def test_sent_so_far_completes_a_resumed_try_with_the_earlier_parts_only() -> None:
    from o2sms.store.queue import sent_so_far
    from o2sms.store.rows import partial_send_json

    earlier = partial_send_json(0x42, ["A-1", None, "A-3"])
    assert sent_so_far([None, "B-2", None], earlier) == ["A-1", "B-2", "A-3"]
    assert sent_so_far([None, "B-2", None], earlier, 0x42) == ["A-1", "B-2", "A-3"]
    assert sent_so_far((), earlier) == ["A-1", None, "A-3"]
    assert sent_so_far([None, "B-2", None], None) == [None, "B-2", None]
    # split anew (another part count or reference): the earlier ids number other parts
    assert sent_so_far(["X-1", None], earlier) == ["X-1", None]
    assert sent_so_far([None, "B-2", None], earlier, 0x43) == [None, "B-2", None]


@given(_JSON_SCALARS | st.sampled_from(list(MessageStatus)))
def test_json_scalar_is_json_dumps_byte_for_byte(value: object) -> None:
    assert json_scalar(value) == json.dumps(value)


_RECEIPTS = st.builds(
    DeliveryReceipt,
    id=st.text(max_size=90),
    sub=st.none() | st.integers(0, 999),
    dlvrd=st.none() | st.integers(0, 999),
    submit_date=st.none() | st.datetimes(timezones=st.none() | st.timezones()),
    done_date=st.none() | st.datetimes(timezones=st.none() | st.timezones()),
    stat=st.sampled_from(list(ReceiptStat)),
    err=st.text(max_size=20),
    text=st.none() | st.text(max_size=30),
    message_state=st.none() | st.sampled_from(list(MessageState)),
    network_error_code=st.none() | st.binary(max_size=3),
)


@given(_RECEIPTS, st.none() | st.text(max_size=20))
def test_receipt_texts_are_json_dumps_byte_for_byte(
    receipt: DeliveryReceipt, submitted_id: str | None
) -> None:
    # the fingerprint of a receipt stored before (by an older version, too) must not change
    fields = [
        clean_message_id(receipt.id),
        receipt.stat.value,
        receipt.err,
        receipt.sub,
        receipt.dlvrd,
        None if receipt.submit_date is None else receipt.submit_date.isoformat(),
        None if receipt.done_date is None else receipt.done_date.isoformat(),
    ]
    expected = hashlib.sha256(json.dumps(fields).encode()).hexdigest()
    assert receipt_fingerprint(receipt) == expected
    detail = _receipt_detail(receipt, submitted_id)
    assert _receipt_detail_text(receipt, submitted_id) == json.dumps(detail)


def test_one_instant_in_two_zones_writes_each_zones_digits() -> None:
    """The receipt dates' JSON is remembered per zone: an equal instant elsewhere is not it."""
    utc = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    bratislava = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == bratislava
    for at in (utc, bratislava):  # each after the other has been written
        receipt = DeliveryReceipt(
            id="1",
            sub=1,
            dlvrd=1,
            submit_date=at,
            done_date=at,
            stat=ReceiptStat.DELIVRD,
            err="000",
            text="x",
        )
        detail = _receipt_detail(receipt, None)
        assert _receipt_detail_text(receipt, None) == json.dumps(detail)
        assert json.loads(_receipt_detail_text(receipt, None))["done_date"] == at.isoformat()
