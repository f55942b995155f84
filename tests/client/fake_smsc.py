"""A small SMSC for client tests, with switches for the faults a client must survive.

It is built on the same sans-IO Connection (SMSC role) as the simulator, on 127.0.0.1 port 0.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from dataclasses import dataclass, field
from typing import Any

from o2sms.client import Client
from o2sms.smpp import (
    CommandStatus,
    DeliverSm,
    GenericNack,
    SubmitSm,
    Tlv,
    TlvTag,
    Unbind,
)
from o2sms.smpp.codec import encode
from o2sms.smpp.connection import (
    Connection,
    ConnectionClosed,
    RequestReceived,
    ResponseReceived,
    Unbound,
)
from o2sms.smpp.state import Role


@dataclass
class Faults:
    """What the fake SMSC does wrong; tests flip these."""

    bind_status: int = 0  #: non-zero refuses binds with this status
    #: refuse binds of these system_types with the status given
    bind_status_by_system_type: dict[str, int] = field(default_factory=dict)
    max_sessions: int | None = None  #: refuse binds beyond this many with ESME_RBINDFAIL
    response_delay: float = 0.0
    reverse_responses: int = 1  #: answer submits in reverse batches of this many
    throttle_first: int = 0  #: answer this many submits with ESME_RTHROTTLED first
    #: close the connection once this many submits were received (answered or held)
    drop_after_submits: int | None = None
    #: after answering this many submits, the SMSC unbinds that session (once)
    unbind_after_submits: int | None = None
    silent: bool = False  #: read everything, answer nothing (a dead link)
    receipts: bool = False  #: send a DELIVRD receipt after each accepted submit
    receipt_in_hex: bool = True  #: receipt text id in decimal when False
    #: send an intermediate notification (esm_class 0x20, stat ACCEPTD) at once and each
    #: receipt 0.2 s later
    intermediate: bool = False
    #: answer the next submits with these error statuses, one each, in order
    submit_statuses: list[int] = field(default_factory=list)
    #: answer the next submits with a generic_nack of these statuses, one each, in order
    nack_statuses: list[int] = field(default_factory=list)
    #: answer the first submit only after this many seconds (the others at once)
    hold_first: float = 0.0
    #: answer an unbind with a generic_nack (ESME_RINVCMDID) instead of unbind_resp
    nack_unbind: bool = False
    #: on the next submit, unbind first (once) and answer the submit this many seconds later
    unbind_before_answer: float | None = None


@dataclass
class FakeSmsc:
    faults: Faults = field(default_factory=Faults)
    submits: list[SubmitSm] = field(default_factory=list)
    sessions: int = 0
    undelivered: list[DeliverSm] = field(default_factory=list)
    delivered_on: list[tuple[int, int]] = field(default_factory=list)
    answers: list[tuple[int, int]] = field(default_factory=list)  #: (sequence_number, status)
    _turn: int = 0
    bind_attempts: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(0x04000000086ECD50))
    ssl_context: ssl.SSLContext | None = None
    bind_system_types: list[str] = field(default_factory=list)
    submit_system_types: list[str] = field(default_factory=list)
    unbinds: int = 0
    received: int = 0  #: submit_sm received, answered or not
    binds: list[Any] = field(default_factory=list)  #: every bind request received
    #: (loop time, connection index) of every submit_sm received, in order of arrival
    submit_log: list[tuple[float, int]] = field(default_factory=list)
    _held: bool = False
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _conns: list[Connection] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> FakeSmsc:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def unbind_all(self) -> None:
        """The SMSC ends every session with unbind."""
        loop = asyncio.get_running_loop()
        for conn, writer in zip(self._conns, self._writers, strict=True):
            if conn.state.is_bound:
                conn.send(Unbind(), loop.time())
                writer.write(conn.data_to_send())

    def drop_all(self) -> None:
        """Close every connection at once, without unbinding (a link that died)."""
        for writer in self._writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        conn = Connection(Role.SMSC, enquire_link_interval=None, window=1000)
        self._writers.append(writer)
        self._conns.append(conn)
        held: list[SubmitSm] = []
        system_type = ""
        bound_here = False
        try:
            while data := await reader.read(65536):
                if self.faults.silent:
                    continue
                if self.faults.nack_unbind and data[4:8] == b"\x00\x00\x00\x06":  # unbind
                    nack = GenericNack(
                        sequence_number=int.from_bytes(data[12:16], "big"),
                        command_status=CommandStatus.ESME_RINVCMDID,
                    )
                    writer.write(encode(nack))
                    continue
                conn.receive_data(data, loop.time())
                while (event := conn.next_event()) is not None:
                    if isinstance(event, ConnectionClosed):
                        return
                    if isinstance(event, Unbound):
                        self.unbinds += 1
                        continue
                    if isinstance(event, ResponseReceived):
                        self.answers.append(
                            (event.response.sequence_number, event.response.command_status)
                        )
                        continue
                    if not isinstance(event, RequestReceived):
                        continue
                    pdu = event.pdu
                    if pdu.command_id.name.startswith("BIND_"):
                        self.bind_attempts += 1
                        self.binds.append(pdu)
                        system_type = getattr(pdu, "system_type", "")
                        status = self.faults.bind_status or (
                            self.faults.bind_status_by_system_type.get(system_type, 0)
                        )
                        limit = self.faults.max_sessions
                        if not status and limit is not None and self.sessions >= limit:
                            status = CommandStatus.ESME_RBINDFAIL
                        conn.send(
                            pdu.response(command_status=status, system_id="FAKE"), loop.time()
                        )
                        if not status:
                            self.sessions += 1
                            self.bind_system_types.append(system_type)
                            bound_here = True
                    elif isinstance(pdu, SubmitSm):
                        self.submit_system_types.append(system_type)
                        self.received += 1
                        self.submit_log.append((loop.time(), self._conns.index(conn)))
                        held.append(pdu)
                        if (late := self.faults.unbind_before_answer) is not None:
                            self.faults.unbind_before_answer = None
                            conn.send(Unbind(), loop.time())
                            writer.write(conn.data_to_send())
                            await asyncio.sleep(late)
                        if len(held) >= self.faults.reverse_responses:
                            for submit in reversed(held):
                                await self._answer_submit(conn, submit, writer)
                            held.clear()
                        unbind_after = self.faults.unbind_after_submits
                        if unbind_after is not None and len(self.submits) >= unbind_after:
                            self.faults.unbind_after_submits = None
                            conn.send(Unbind(), loop.time())  # goes out with the answers
                        if (
                            self.faults.drop_after_submits is not None
                            and self.received >= self.faults.drop_after_submits
                        ):
                            writer.write(conn.data_to_send())
                            writer.close()
                            return
                    elif pdu.response_class is not None:
                        conn.send(pdu.response(), loop.time())
                if self.faults.response_delay:
                    await asyncio.sleep(self.faults.response_delay)
                writer.write(conn.data_to_send())
        except ConnectionError:
            pass
        finally:
            if bound_here:
                self.sessions -= 1
            writer.close()

    async def _answer_submit(
        self, conn: Connection, submit: SubmitSm, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        if self.faults.hold_first and not self._held:
            self._held = True

            def late() -> None:
                if conn.state.is_bound and not writer.is_closing():
                    conn.send(submit.response(message_id="LATE"), loop.time())
                    writer.write(conn.data_to_send())

            loop.call_later(self.faults.hold_first, late)
            return
        if self.faults.nack_statuses:
            status = self.faults.nack_statuses.pop(0)
            nack = GenericNack(command_status=status, sequence_number=submit.sequence_number)
            conn.send(nack, loop.time())
            return
        if self.faults.submit_statuses:
            status = self.faults.submit_statuses.pop(0)
            conn.send(submit.response(command_status=status), loop.time())
            return
        if self.faults.throttle_first > 0:
            self.faults.throttle_first -= 1
            conn.send(submit.response(command_status=CommandStatus.ESME_RTHROTTLED), loop.time())
            return
        self.submits.append(submit)
        number = next(self._ids)
        message_id = f"{number:016X}"
        conn.send(submit.response(message_id=message_id), loop.time())
        if self.faults.receipts and submit.registered_delivery & 1:
            shown = message_id if self.faults.receipt_in_hex else str(number)
            text = (
                f"id:{shown} sub:001 dlvrd:001 submit date:2611251200 done date:2611251201 "
                "stat:DELIVRD err:000 text:"
            )
            tlvs: tuple[Tlv, ...] = (Tlv(TlvTag.MESSAGE_STATE, 2),)
            if self.faults.receipt_in_hex:
                tlvs = (Tlv(TlvTag.RECEIPTED_MESSAGE_ID, message_id), *tlvs)
            if self.faults.intermediate:
                self.deliver(
                    DeliverSm(
                        source_addr=submit.destination_addr,
                        destination_addr=submit.source_addr,
                        esm_class=0x20,
                        short_message=text.replace("DELIVRD", "ACCEPTD")
                        .replace("dlvrd:001", "dlvrd:000")
                        .encode(),
                        tlvs=(Tlv(TlvTag.RECEIPTED_MESSAGE_ID, message_id),),
                    )
                )
            final = DeliverSm(
                source_addr=submit.destination_addr,
                destination_addr=submit.source_addr,
                esm_class=0x04,
                short_message=text.encode(),
                tlvs=tlvs,
            )
            if self.faults.intermediate:  # the final state comes later, as on a real network
                loop.call_later(0.2, self.deliver, final)
            else:
                self.deliver(final)

    def deliver(self, pdu: DeliverSm) -> None:
        """Send a deliver_sm to the bound receiving sessions in turn, like the gateway."""
        loop = asyncio.get_running_loop()
        receivers = [
            (conn, writer)
            for conn, writer in zip(self._conns, self._writers, strict=True)
            if conn.state.is_bound and conn.bind_type is not None and conn.bind_type.can_receive
        ]
        if not receivers:
            self.undelivered.append(pdu)
            return
        conn, writer = receivers[self._turn % len(receivers)]
        self._turn += 1
        sent = conn.send(pdu, loop.time())
        self.delivered_on.append((sent.sequence_number, self._conns.index(conn)))
        writer.write(conn.data_to_send())


def client(smsc: FakeSmsc, **options: Any) -> Client:
    """A Client of one session for the fake SMSC, with short timeouts (options override)."""
    settings: dict[str, Any] = {
        "system_id": "acct",
        "password": "a-long-password",
        "sessions": 1,
        "connect_timeout": 2.0,
        "response_timeout": 2.0,
    }
    settings.update(options)
    return Client("127.0.0.1", smsc.port, **settings)
