"""The controller's coalescing transport (controller/limits.py): a response's headers and body leave
in one write, nothing is held past the loop's next turn (a write that starts no response is not
held at all), and order survives writes and closes."""

from __future__ import annotations

import asyncio

from cloudgw.controller.limits import COALESCE_MAX, CoalescingTransport


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_headers_and_body_leave_as_one_write_and_a_lone_write_on_the_next_turn():
    async def scenario() -> None:
        raw = Recorder()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert raw.writes == []  # held for the body
        assert transport.get_write_buffer_size() == 19
        transport.write(b"")  # nothing to send: changes nothing
        transport.write(bytearray(b"body"))
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # a response without a body
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        await asyncio.sleep(0)  # the loop's next turn
        assert raw.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n"
        transport.writelines([b"HTTP/1.1 200 OK\r\n\r\n", b"b"])
        assert raw.writes[-1] == b"HTTP/1.1 200 OK\r\n\r\nb"
        transport.write(b"a streamed line\n")  # no response starts with it: it leaves at once
        assert raw.writes[-1] == b"a streamed line\n"
        big = b"x" * (COALESCE_MAX + 1)  # a hub's document: after the headers, not joined to them
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(big)
        assert raw.writes[-2:] == [b"HTTP/1.1 200 OK\r\n\r\n", big] and raw.writes[-1] is big
        assert transport.get_extra_info("peername") == ("127.0.0.1", 1)  # everything else is the transport's

    asyncio.run(scenario())


def test_close_and_eof_send_what_is_held_first_and_a_closed_transport_gets_nothing():
    async def scenario() -> None:
        raw = Recorder()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.close()
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n"] and raw.closed
        transport.write(b"too late")
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]  # the transport was closing: dropped, as it would drop it
        raw2 = Recorder()
        second = CoalescingTransport(raw2, asyncio.get_running_loop())
        second.write(b"HTTP/1.1 200 OK\r\n\r\n")
        second.write_eof()
        assert raw2.writes == [b"HTTP/1.1 200 OK\r\n\r\n"] and raw2.eof

    asyncio.run(scenario())
