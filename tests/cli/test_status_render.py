"""``o2sms status``'s tables on an 80-column terminal."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console

from o2sms.cli.status import render_message


def _local(iso: str, pattern: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime(pattern)[:-3]


def test_parts_fit_80_columns_with_whole_ids_and_times_of_the_day() -> None:
    created = "2026-12-07T12:00:00.000000Z"
    same_day = "2026-12-07T12:00:00.250000Z"
    next_day = "2026-12-08T12:00:01.500000Z"  # a receipt a day later keeps its date
    ids = ["21b7090000000001", "21b7090000000003"]
    view = {
        "id": "01M98KBFY3XB2TXTADAP74HPMX",
        "status": "delivered",
        "to": "+421903123456",
        "encoding": "ucs2",
        "parts_count": 2,
        "attempts": 1,
        "created_at": created,
        "parts": [
            {
                "part_no": n,
                "smsc_id": i,
                "status": "delivered",
                "error_code": "000",
                "submitted_at": same_day,
                "receipt_at": receipt,
            }
            for n, (i, receipt) in enumerate(zip(ids, [same_day, next_day], strict=True), 1)
        ],
        "timeline": [{"at": same_day, "kind": "submitted", "detail": {"ids": ids}}],
    }
    console = Console(width=80, record=True, color_system=None)
    render_message(console, view)
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [line for line in lines if any(f" {i} " in line for i in ids)]  # whole, not folded
    assert len(rows) == 2
    time_of_day = _local(same_day, "%H:%M:%S.%f")
    assert rows[0].count(time_of_day) == 2  # submitted and receipt, no date
    assert rows[1].count(time_of_day) == 1
    assert _local(next_day, "%Y-%m-%d") in rows[1]  # another day keeps its date
    assert any(line.startswith(f"│ {time_of_day} │ submitted") for line in lines)
