"""A local AWS for tests: moto in server mode, behind a strict layer that refuses what AWS refuses
and moto accepts (PLATFORM.md section 9). boto3 in cloudgw is pointed at the strict layer.

Refused here, as AWS does (error codes as AWS gives them):
- a secondary or primary private IP among the five the subnet reserves (.0-.3 and the last), or
  outside the subnet: InvalidParameterValue;
- an address another interface holds, without AllowReassignment: InvalidParameterValue (AWS: "...is
  in use"); with AllowReassignment it is refused too: cloudgw must never take a VM's address;
- more private IPs on an ENI than its instance type allows: PrivateIpAddressLimitExceeded.
It also counts calls by action and can throttle the next N mutating calls (RequestLimitExceeded, 503).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.helpers import wait_for

REGION = "eu-west-1"
CREDENTIALS = {"aws_access_key_id": "AKIDTESTONLY", "aws_secret_access_key": "moto-secret-never-logged"}
MUTATING = ("Assign", "Unassign", "Modify", "Create", "Delete", "Authorize", "Revoke", "Run", "Terminate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _error(code: str, message: str, status: int = 400) -> tuple[int, bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
        f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>strict-layer</RequestID></Response>"
    )
    return status, body.encode()


class StrictAws:
    """moto_server (a child process, stopped by PID) and the strict proxy in front of it."""

    def __init__(self, log_dir: Path) -> None:
        self.moto_port, self.port = free_port(), free_port()
        self.log = open(log_dir / "moto.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(  # the venv's moto_server, next to its python
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.moto_port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        wait_for(self._moto_up, timeout=30, what="moto_server to answer")
        self.calls: Counter[str] = Counter()
        self.throttle = 0
        self.refusals: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ec2 = self.client(self.moto_url)  # straight to moto: the test's own view and setup

    def _moto_up(self) -> bool:
        try:
            return httpx.get(f"{self.moto_url}/moto-api/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, url: str | None = None) -> Any:
        return boto3.client("ec2", region_name=REGION, endpoint_url=url or self.url, **CREDENTIALS)

    def reset(self) -> None:
        httpx.post(f"{self.moto_url}/moto-api/reset", timeout=10)
        self.calls.clear()
        self.refusals.clear()
        self.throttle = 0

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    # the strict checks ------------------------------------------------------------------------
    def _interface(self, eni: str) -> dict[str, Any]:
        return self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]

    def _subnet_checks(self, subnet_id: str, addresses: list[str]) -> tuple[int, bytes] | None:
        cidr = IPv4Network(self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["CidrBlock"])
        base = int(cidr.network_address)
        reserved = {IPv4Address(base + i) for i in range(4)} | {cidr.broadcast_address}
        for text in addresses:
            ip = IPv4Address(text)
            if ip not in cidr:
                return _error("InvalidParameterValue", f"Address {ip} does not fall within the subnet's address range")
            if ip in reserved:
                return _error("InvalidParameterValue", f"Address {ip} is reserved in subnet {subnet_id}")
        return None

    def _in_use(self, subnet_id: str, addresses: list[str], own: str | None) -> tuple[int, bytes] | None:
        pages = self.ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])
        for eni in pages["NetworkInterfaces"]:
            if eni["NetworkInterfaceId"] == own:
                continue
            held = {a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]}
            for text in addresses:
                if text in held:
                    return _error("InvalidParameterValue", f"Address {text} is in use by {eni['NetworkInterfaceId']}")
        return None

    def _limit(self, eni: dict[str, Any], more: int) -> tuple[int, bytes] | None:
        instance = eni.get("Attachment", {}).get("InstanceId")
        if not instance:
            return None
        kind = self.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["InstanceType"]
        limit = self.ec2.describe_instance_types(InstanceTypes=[kind])["InstanceTypes"][0]["NetworkInfo"][
            "Ipv4AddressesPerInterface"
        ]
        if len(eni["PrivateIpAddresses"]) + more > limit:
            return _error(
                "PrivateIpAddressLimitExceeded",
                f"Number of private addresses will exceed limit ({limit}) for {kind} on {eni['NetworkInterfaceId']}",
            )
        return None

    def check(self, form: dict[str, list[str]]) -> tuple[int, bytes] | None:
        action = form.get("Action", [""])[0]
        if action == "AssignPrivateIpAddresses":
            eni_id = form["NetworkInterfaceId"][0]
            addresses = [v[0] for k, v in sorted(form.items()) if k.startswith("PrivateIpAddress.")]
            if form.get("AllowReassignment", ["false"])[0].lower() == "true":
                return _error("StrictLayer", "AllowReassignment would take an address from another interface")
            if form.get("SecondaryPrivateIpAddressCount"):
                return None
            eni = self._interface(eni_id)
            return (
                self._subnet_checks(eni["SubnetId"], addresses)
                or self._in_use(eni["SubnetId"], addresses, eni_id)
                or self._limit(eni, len(addresses))
            )
        if action == "RunInstances" and form.get("PrivateIpAddress") and form.get("SubnetId"):
            addresses = form["PrivateIpAddress"]
            return self._subnet_checks(form["SubnetId"][0], addresses) or self._in_use(
                form["SubnetId"][0], addresses, None
            )
        if action == "CreateNetworkInterface" and form.get("PrivateIpAddress"):
            subnet = form["SubnetId"][0]
            return self._subnet_checks(subnet, form["PrivateIpAddress"]) or self._in_use(
                subnet, form["PrivateIpAddress"], None
            )
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        layer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                reply = httpx.request(
                    self.command, f"{layer.moto_url}{self.path}", content=body, headers=headers, timeout=60
                )
                self._send(reply.status_code, reply.content, reply.headers.get("content-type", "text/xml"))

            def _send(self, status: int, body: bytes, content_type: str = "text/xml") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
                action = form.get("Action", [""])[0]
                layer.calls[action] += 1
                if layer.throttle > 0 and action.startswith(MUTATING):
                    layer.throttle -= 1
                    self._send(*_error("RequestLimitExceeded", "Request limit exceeded.", 503))
                    return
                refused = layer.check(form)
                if refused is not None:
                    layer.refusals.append(f"{action}: {refused[1].decode()}")
                    self._send(*refused)
                    return
                self._forward(body)

            def do_GET(self) -> None:
                self._forward(b"")

        return Handler
