"""A client given the controller's CA trusts that CA alone: a certificate for the controller's address
issued by any other CA, even one in the machine's trust store (a public CA), is refused."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudgw.client.api import Client, Unreachable
from cloudgw.controller.tls import CA_CERT, SERVER_CERT, SERVER_KEY, make_ca, make_server_cert
from tests.helpers import json_server


@pytest.fixture
def impostor(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A TLS server on 127.0.0.1 whose certificate a "public" CA issued; yields (url, that CA, the
    controller's CA, which did not issue it)."""
    public, ours = tmp_path / "public", tmp_path / "ours"
    make_ca(public)
    make_ca(ours)
    make_server_cert(public, ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(public / SERVER_CERT, public / SERVER_KEY)
    with json_server(lambda _path: {"hello": "from the impostor"}, tls=context) as url:
        yield url, public / CA_CERT, ours / CA_CERT


def test_a_pinned_ca_is_the_only_one_trusted(impostor, monkeypatch):
    url, public_ca, our_ca = impostor
    # the "public" CA is in this machine's trust store, as a real public CA would be
    monkeypatch.setenv("SSL_CERT_FILE", str(public_ca))
    with Client(url, verify=True) as trusting_the_store:  # the store alone: accepted, so the setup is real
        assert trusting_the_store.request("GET", "/").json() == {"hello": "from the impostor"}
    with Client(url, ca=str(public_ca)) as pinned_to_issuer:
        assert pinned_to_issuer.request("GET", "/").status_code == 200
    for ca in (str(our_ca), our_ca.read_text()):  # a file, or the PEM text itself
        with Client(url, ca=ca) as pinned, pytest.raises(Unreachable, match="not signed by the CA we trust"):
            pinned.request("GET", "/")


def test_the_controller_issues_no_session_tickets(controller):
    """No client resumes a TLS session with the controller: it makes and sends no tickets (two per
    handshake by default, measured in docs/benchmarks.md)."""
    from urllib.parse import urlsplit

    host, port = urlsplit(controller.url).hostname, urlsplit(controller.url).port
    context = ssl.create_default_context(cafile=controller.ca)
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.version() == "TLSv1.3"
        tls.sendall(b"GET /api/v1/agent/ca HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):  # tickets, if any, come before the answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert tls.session is not None and not tls.session.has_ticket
