"""The streamed watch (`GET /api/v1/agent/document?stream=true`): every newer document as one line of
one response, keep-alives in between, and the stream ends when its credential or its gateway does."""

from __future__ import annotations

import http.server
import queue
import threading
import time
from pathlib import Path

from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.client import AgentClient
from tests.contract.world import join, make_world
from tests.helpers import json_server, wait_for

END = object()


def feed(agent: AgentClient, after: int, wait: float) -> tuple[queue.Queue, threading.Thread]:
    """Read a stream in a thread: every item it yields, then END (or the error that ended it)."""
    items: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for item in agent.stream(after, wait=wait):
                items.put(item)
            items.put(END)
        except Exception as exc:  # the test asserts what ended it
            items.put(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return items, thread


def next_document(items: queue.Queue, deadline: float = 15.0) -> dict:
    """The next document on the stream, skipping keep-alives; fails at END or after the deadline."""
    end = time.monotonic() + deadline
    while True:
        item = items.get(timeout=max(0.01, end - time.monotonic()))
        assert item is not END and not isinstance(item, Exception), item
        if item is not None:
            return item


def test_one_stream_carries_every_new_document_and_keepalives(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    credential_b, _ = join(api, controller, world.gw_b)
    with controller.agent(credential_a) as agent_a, controller.agent(credential_b) as agent_b:
        items, reader = feed(agent_a, -1, wait=1.0)
        assert items.get(timeout=10) is None  # the first line: connected, before anything changes
        first = next_document(items)
        assert first["gateway"]["name"] == world.gw_a
        started = time.monotonic()
        assert items.get(timeout=10) is None  # nothing changed: a keep-alive after about `wait`
        # after about `wait` (less up to a fifth, docs/controller.md), counted here from when this
        # thread read the document, which may be a while after the controller wrote it
        assert time.monotonic() - started >= 0.4
        revisions = [first["revision"]]
        for n in (13, 14):  # two changes, both on the same response
            agent_b.announce(world.network, [{"ip": f"192.168.1.{n}"}])
            document = next_document(items)
            assert document["revision"] > revisions[-1]
            remote = {e["ip"] for net in document["networks"] for e in net["remote_endpoints"]}
            assert f"192.168.1.{n}" in remote
            revisions.append(document["revision"])
        # end the stream before the client closes: a reader left in recv() on a socket another
        # thread closed reads from whatever connection gets that descriptor next (a later test's
        # join once failed with "bad record mac" that way)
        api.delete("gateways", world.gw_a)
        reader.join(timeout=15)
        assert not reader.is_alive()


def test_a_stream_starts_after_the_revision_it_names(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    with controller.agent(credential_a) as agent_a:
        current = agent_a.watch(-1, wait=0)["revision"]
        stream = agent_a.stream(current, wait=1.0)
        assert next(stream) is None  # connected
        assert next(stream) is None  # and nothing newer than `current`: a keep-alive, no document
        stream.close()


def test_a_stream_ends_when_its_credential_is_revoked(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    first, _ = join(api, controller, world.gw_a)
    with controller.agent(first) as agent:
        items, thread = feed(agent, -1, wait=60.0)
        next_document(items)
        token = api.create("tokens", {"name": f"again-{uid}", "role": "join", "gateway": world.gw_a})["token"]
        with controller.agent(token) as joiner:  # joining again revokes the first credential
            joiner.join(public_key_of(generate_private_key()))
        thread.join(timeout=15)  # not after the 60 s keep-alive: at the revocation
        assert not thread.is_alive()
        rest = []
        while not items.empty():
            rest.append(items.get())
        assert rest[-1] is END
        assert all(item is None or isinstance(item, dict) for item in rest[:-1])


def test_a_stream_ends_when_its_gateway_is_deleted(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    with controller.agent(credential_a) as agent:
        items, thread = feed(agent, -1, wait=60.0)
        next_document(items)
        api.delete("gateways", world.gw_a)
        thread.join(timeout=15)
        assert not thread.is_alive()


def test_an_older_controller_that_does_not_stream_is_answered_as_a_long_poll():
    # a controller from before the stream: it ignores `stream` and answers one long-poll
    with json_server(lambda path: {"revision": 7, "from": path}) as url, AgentClient(url, token="cgw_x") as agent:
        answers = list(agent.stream(3, wait=1.0))
        assert len(answers) == 1
        assert answers[0]["revision"] == 7
        assert "stream=true" in answers[0]["from"] and "after=3" in answers[0]["from"]


def test_the_agents_watch_follows_changes_over_one_stream(api, controller, uid, tmp_path, monkeypatch):
    """ControllerSource (what `cloudgw agent run` uses) on the stream: three changes reach it on the
    stream it opened first, without a new request."""
    from cloudgw.agent.link import ControllerLink, ControllerSource

    opened = []
    real_stream = AgentClient.stream

    def counted(self, *args, **kwargs):
        opened.append(args)
        return real_stream(self, *args, **kwargs)

    monkeypatch.setattr(AgentClient, "stream", counted)
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    credential_b, _ = join(api, controller, world.gw_b)
    link = ControllerLink(controller.url, tmp_path / "a")
    link.gateway, link._credential = world.gw_a, credential_a
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ca.pem").write_text(Path(controller.ca).read_text())
    source = ControllerSource(link, tmp_path / "a" / "document.json", wait=30)
    changes = []
    source.on_change = lambda: changes.append(source.revision)
    source.start()
    try:
        wait_for(lambda: changes, 15, what="the first document")
        with controller.agent(credential_b) as agent_b:
            for n in (15, 16, 17):
                agent_b.announce(world.network, [{"ip": f"192.168.1.{n}"}])
                revision = agent_b.watch(-1, wait=0)["revision"]
                wait_for(lambda r=revision: source.revision >= r, 15, what=f"revision {revision} at the agent")
        assert source.connected and source.error is None
        assert changes == sorted(changes) and len(changes) >= 2
        assert len(opened) == 1, opened  # every change came on the first stream
    finally:
        source.stop()


class _HangsUp(http.server.BaseHTTPRequestHandler):
    """A controller that opens a stream, says nothing, and closes it: counts the connections."""

    opened: list[float] = []

    def do_GET(self) -> None:
        _HangsUp.opened.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"\n")

    def log_message(self, *_args: object) -> None:
        pass


def test_a_stream_that_ends_at_once_is_not_reopened_in_a_spin(tmp_path):
    from cloudgw.agent.link import ControllerLink, ControllerSource

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HangsUp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    link = ControllerLink(f"http://127.0.0.1:{server.server_address[1]}", tmp_path)
    link.gateway, link._credential = "gw-a", "cgw_x"
    link.client = lambda timeout=10.0: AgentClient(link.url, token="cgw_x", timeout=timeout)
    source = ControllerSource(link, tmp_path / "document.json", wait=30)
    _HangsUp.opened.clear()
    source.start()
    try:
        wait_for(lambda: len(_HangsUp.opened) >= 4, 15, what="four connections")
        gaps = [b - a for a, b in zip(_HangsUp.opened, _HangsUp.opened[1:], strict=False)][:3]
        assert gaps[0] >= 0.4 and gaps[1] >= 0.9 and gaps[2] >= 1.9, gaps  # 0.5, 1, 2 s: backing off
        assert source.connected  # it did hear the controller
    finally:
        source.stop()
        server.shutdown()
        server.server_close()
