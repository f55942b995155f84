"""Load test of the simulator: pipelined submit_sm with a receipt per message, RSS over time.

Run: ``.venv/bin/python benchmarks/bench_simulator.py --messages 1000000``

The simulator runs in a child process (pinned to CPU 1 with ``taskset`` when there is one);
this process (pinned to CPU 0) is a hand-written asyncio load generator: one transceiver,
``--window`` submit_sm outstanding, registered_delivery=1, answering every deliver_sm. The
rate counts a message once its submit_sm_resp *and* its receipt are in. The simulator's RSS
is read from /proc at every tenth of the run, and its peak (VmHWM) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from typing import Final

from o2sms.simulator import Account, Simulator
from o2sms.smpp import BindTransceiver, DeliverSmResp, SubmitSm, encode

SYSTEM_ID: Final = "bench"
PASSWORD: Final = "bench-password"
_HEADER = struct.Struct(">IIII")
_SEQ = struct.Struct(">I")
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
BIND_TRANSCEIVER_RESP: Final = 0x80000009


# --- the simulator side (child process) --------------------------------------------------


async def serve(receipt_delay: float, store_size: int) -> None:
    """Run the simulator until SIGTERM; print its port on stdout."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Simulator(
        accounts=(Account(SYSTEM_ID, PASSWORD),),
        receipt_delay=receipt_delay,
        store_size=store_size,
        inactivity_timeout=None,
    ) as smsc:
        print(smsc.port, flush=True)
        await stop.wait()


# --- the load generator (this process) ----------------------------------------------------


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident set size (or VmHWM, the peak) of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Generator(asyncio.Protocol):
    """Pipelined submit_sm with a fixed window; answers deliver_sm; counts both."""

    def __init__(self, total: int, window: int, pid: int) -> None:
        self.total = total
        self.window = window
        self.pid = pid
        self.sent = 0
        self.responses = 0
        self.receipts = 0
        self.errors = 0
        self.bound = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.samples: list[tuple[int, int]] = []
        self._next_sample = total // 10
        self._buffer = b""
        self._template = bytearray(
            encode(
                SubmitSm(
                    sequence_number=1,
                    source_addr_ton=5,
                    source_addr="O2Bench",
                    dest_addr_ton=1,
                    dest_addr_npi=1,
                    destination_addr="421900123456",
                    registered_delivery=1,
                    short_message=b"Benchmark message with a receipt, please.",
                )
            )
        )
        self._resp = bytearray(encode(DeliverSmResp(sequence_number=1)))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            encode(BindTransceiver(sequence_number=1, system_id=SYSTEM_ID, password=PASSWORD))
        )

    def _submits(self, count: int) -> bytes:
        count = min(count, self.total - self.sent)
        out = bytearray()
        template = self._template
        for _ in range(count):
            self.sent += 1
            _SEQ.pack_into(template, 12, self.sent % 0x7FFFFFFF + 1)
            out += template
        return bytes(out)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        end = len(buffer)
        out = bytearray()
        freed = 0
        unpack = _HEADER.unpack_from
        while end - pos >= 16:
            length, command_id, status, seq = unpack(buffer, pos)
            if end - pos < length:
                break
            if command_id == SUBMIT_SM_RESP:
                self.responses += 1
                freed += 1
                if status:
                    self.errors += 1
            elif command_id == DELIVER_SM:
                self.receipts += 1
                _SEQ.pack_into(self._resp, 12, seq)
                out += self._resp
            elif command_id == BIND_TRANSCEIVER_RESP:
                self.bound.set_result(status)
                freed = self.window
            pos += length
        self._buffer = buffer[pos:]
        if freed:
            out += self._submits(freed)
        if out and self.transport is not None:
            self.transport.write(bytes(out))
        if self.responses >= self._next_sample:
            self.samples.append((self.responses, rss_kib(self.pid)))
            self._next_sample += self.total // 10
        if self.responses >= self.total and self.receipts >= self.total and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"lost after {self.responses}: {exc}"))


async def generate(port: int, total: int, window: int, pid: int) -> None:
    loop = asyncio.get_running_loop()
    transport, generator = await loop.create_connection(
        lambda: Generator(total, window, pid), "127.0.0.1", port
    )
    status = await generator.bound
    if status:
        raise SystemExit(f"bind refused: 0x{status:08X}")
    started = time.perf_counter()
    cpu_started = cpu_seconds(pid)
    await generator.done
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_started
    transport.close()
    print(f"messages            {total:,} (window {window}, registered_delivery=1)")
    print(f"elapsed             {elapsed:.2f} s")
    print(f"submit_sm/s         {total / elapsed:,.0f} (each with its submit_sm_resp and receipt)")
    print(f"errors              {generator.errors}")
    print(f"simulator CPU       {cpu:.2f} s ({cpu / total * 1e6:.1f} µs per message)")
    print(f"simulator peak RSS  {rss_kib(pid, 'VmHWM') / 1024:.1f} MiB")
    print(
        "simulator RSS       "
        + ", ".join(f"{n // 1000}k: {kib / 1024:.1f} MiB" for n, kib in generator.samples)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--receipt-delay", type=float, default=0.1)
    parser.add_argument("--store-size", type=int, default=10_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.receipt_delay, args.store_size))
        return
    profile = os.environ.get("BENCH_PROFILE")  # a file name: profile the simulator into it
    command = [
        sys.executable,
        *(["-m", "cProfile", "-o", profile] if profile else []),
        __file__,
        "--serve",
        f"--receipt-delay={args.receipt_delay}",
        f"--store-size={args.store_size}",
    ]
    taskset = shutil.which("taskset")
    pinned = taskset is not None and (os.cpu_count() or 1) >= 2
    if pinned and taskset is not None:
        command = [taskset, "-c", "1", *command]
        os.sched_setaffinity(0, {0})
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        print(
            f"simulator pid {child.pid} on port {port}"
            + (" (CPU 1; generator CPU 0)" if pinned else "")
        )
        print(f"simulator RSS idle  {rss_kib(child.pid) / 1024:.1f} MiB")
        asyncio.run(generate(port, args.messages, args.window, child.pid))
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(10)


if __name__ == "__main__":
    main()
