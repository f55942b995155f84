"""The send answer's JSON, written without its models, is the models' own."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from o2sms.service.schemas import Accepted, AcceptedMessage, accepted_json
from o2sms.store.models import EnqueueResult, Message, MessageStatus


def _message(n: int, status: MessageStatus) -> Message:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fields: dict[str, Any] = dict.fromkeys(f.name for f in dataclasses.fields(Message))
    fields.update(id=f"01J{n:023d}", recipient=f"+42190000{n:04d}", text="Ahoj", status=status)
    fields.update(parts_count=1, flash=False, owner="", attempts=0, resends=0)
    fields.update(next_attempt_at=now, created_at=now, updated_at=now, parts=(), events=())
    fields.update(resend=False, partial_send=None)
    return Message(**fields)


def test_the_accepted_answer_is_what_its_model_serialises() -> None:
    messages = [_message(1, MessageStatus.QUEUED), _message(2, MessageStatus.SCHEDULED)]
    results = [
        EnqueueResult(messages[0], created=True),
        EnqueueResult.deferred("01JX", "+421900000099", MessageStatus.QUEUED, lambda: messages[1]),
    ]
    model = Accepted(
        messages=[AcceptedMessage(id=r.id, to=r.recipient, status=r.status) for r in results],
        encoding="ucs2",
        parts=3,
    )
    assert accepted_json(results, "ucs2", 3) == model.model_dump_json(by_alias=True).encode()
    assert accepted_json(results[:1], "gsm7", 1) == (
        b'{"messages":[{"id":"01J00000000000000000000001","to":"+421900000001",'
        b'"status":"queued"}],"encoding":"gsm7","parts":1}'
    )
