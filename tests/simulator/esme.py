"""A minimal test ESME over a real socket: the sans-IO Connection (ESME role) plus asyncio streams.

It answers deliver_sm on its own unless told not to, keeps them in a queue, and lets tests
send raw bytes to exercise malformed input. 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any, ClassVar

from o2sms.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    Pdu,
    SubmitSm,
    SubmitSmResp,
)
from o2sms.smpp.codec import decode, encode
from o2sms.smpp.connection import (
    Connection,
    ConnectionClosed,
    PduRejected,
    RequestReceived,
    ResponseReceived,
    Unbound,
    UnexpectedResponse,
)
from o2sms.smpp.framer import Framer
from o2sms.smpp.state import Role

HOST = "127.0.0.1"
_BINDS: dict[str, type[BindTransmitter | BindReceiver | BindTransceiver]] = {
    "tx": BindTransmitter,
    "rx": BindReceiver,
    "trx": BindTransceiver,
}


class Esme:
    """One connection to the simulator."""

    open_instances: ClassVar[list[Esme]] = []  #: closed by the conftest after each test

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = Connection(Role.ESME, window=10_000, enquire_link_interval=None)
        self.auto_ack = True
        self.deliveries: asyncio.Queue[DeliverSm] = asyncio.Queue()
        self.unanswered: list[DeliverSm] = []
        self.rejected: list[PduRejected] = []
        self.closed = asyncio.Event()
        self.unbound = asyncio.Event()
        self._waiting: dict[int, asyncio.Future[Pdu]] = {}
        self._task = asyncio.create_task(self._read())
        Esme.open_instances.append(self)

    @classmethod
    async def open(cls, port: int, *, ssl_context: ssl.SSLContext | None = None) -> Esme:
        reader, writer = await asyncio.open_connection(
            HOST, port, ssl=ssl_context, server_hostname="localhost" if ssl_context else None
        )
        return cls(reader, writer)

    @classmethod
    async def bound(
        cls,
        port: int,
        kind: str = "trx",
        system_id: str = "acct",
        password: str = "a-long-password",
        system_type: str = "",
        **kw: Any,
    ) -> Esme:
        esme = await cls.open(port, **kw)
        resp = await esme.bind(kind, system_id, password, system_type)
        assert resp.command_status == 0, resp
        return esme

    async def bind(self, kind: str, system_id: str, password: str, system_type: str = "") -> Pdu:
        return await self.request(
            _BINDS[kind](system_id=system_id, password=password, system_type=system_type)
        )

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(65536):
                self.conn.receive_data(data, 0.0)
                self._events()
        except (ConnectionError, ssl.SSLError):
            pass
        self.conn.receive_data(b"", 0.0)
        self._events()
        self.closed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionResetError("closed"))

    def _events(self) -> None:
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, ResponseReceived):
                future = self._waiting.pop(event.request.sequence_number, None)
                if future is not None and not future.done():
                    future.set_result(event.response)
            elif isinstance(event, RequestReceived) and isinstance(event.pdu, DeliverSm):
                if self.auto_ack:
                    self.conn.send(event.pdu.response(), 0.0)
                else:
                    self.unanswered.append(event.pdu)
                self.deliveries.put_nowait(event.pdu)
            elif isinstance(event, UnexpectedResponse):
                future = self._waiting.pop(event.pdu.sequence_number, None)
                if future is not None and not future.done():
                    future.set_result(event.pdu)
            elif isinstance(event, PduRejected):
                self.rejected.append(event)
            elif isinstance(event, Unbound):
                self.unbound.set()
            elif isinstance(event, ConnectionClosed):
                pass
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def send(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Send a request; the future gets its response."""
        sent = self.conn.send(pdu, 0.0)
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[sent.sequence_number] = future
        self._flush()
        return future

    async def request(self, pdu: Pdu, timeout: float = 3.0) -> Pdu:
        """Send a request and wait for its response."""
        return await asyncio.wait_for(self.send(pdu), timeout)

    async def submit(self, timeout: float = 3.0, **fields: Any) -> SubmitSmResp:
        defaults: dict[str, Any] = {
            "source_addr_ton": 5,
            "source_addr": "O2Shop",
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": "421900123456",
            "short_message": b"Hello",
        }
        defaults.update(fields)
        resp = await self.request(SubmitSm(**defaults), timeout)
        assert isinstance(resp, SubmitSmResp), resp
        return resp

    async def next_delivery(self, timeout: float = 3.0) -> DeliverSm:
        return await asyncio.wait_for(self.deliveries.get(), timeout)

    async def raw_request(
        self, data: bytes | Pdu, sequence_number: int, timeout: float = 3.0
    ) -> Pdu:
        """Write bytes (or a PDU) past our own state table; wait for the answer to that seq."""
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[sequence_number] = future
        self.writer.write(data if isinstance(data, bytes) else encode(data))
        return await asyncio.wait_for(future, timeout)

    def write_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_raw_pdu(self, timeout: float = 3.0) -> Pdu:
        """Read one PDU directly (use on an Esme whose reader task was stopped)."""
        framer = Framer()
        async with asyncio.timeout(timeout):
            while True:
                frame = framer.next_frame()
                if frame is not None:
                    return decode(frame)
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("closed")
                framer.feed(data)

    async def wait_closed(self, timeout: float = 3.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, ssl.SSLError):
            await self._task
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
