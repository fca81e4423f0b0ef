"""A small fake OpenStack for tests (no maintained emulator exists): Keystone v3 password tokens with
a service catalog, the Neutron resources cloudgw uses (networks, subnets, ports with allowed address
pairs and port security, security groups and rules) and Nova servers (create, list, show, delete). cloudgw
reaches it only through openstacksdk, configured by a clouds.yaml the fake writes.

It keeps Neutron's refusals that matter here: allowed address pairs on a port without port security
(409), allocation pools outside the subnet or holding its gateway_ip (400), an address already in
use (409), deleting a security group a port still uses (409), no token or a wrong one (401).
"""

from __future__ import annotations

import threading
import uuid
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.clouds.moto_strict import free_port
from tests.helpers import wait_for

PASSWORD = "os-password-never-logged"
FIELDS = {
    "networks": "network",
    "subnets": "subnet",
    "ports": "port",
    "security-groups": "security_group",
    "security-group-rules": "security_group_rule",
}


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"NeutronError": {"type": kind, "message": message, "detail": ""}}, status_code=status)


class FakeOpenStack:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tokens: set[str] = set()
        self.data: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in FIELDS}
        self.servers: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.app = self._app()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, what="the fake OpenStack to start")
        self.clouds_yaml = directory / "clouds.yaml"
        self.clouds_yaml.write_text(
            yaml.safe_dump(
                {
                    "clouds": {
                        "private-cloud": {
                            "auth": {
                                "auth_url": f"{self.base}/identity/v3",
                                "username": "admin",
                                "password": PASSWORD,
                                "project_name": "demo",
                                "user_domain_name": "Default",
                                "project_domain_name": "Default",
                            },
                            "region_name": "RegionOne",
                            "identity_api_version": 3,
                        }
                    }
                }
            )
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def reset(self) -> None:
        with self.lock:
            for table in self.data.values():
                table.clear()
            self.servers.clear()
            self.requests.clear()

    # the test's own view and setup (what an OpenStack admin would have done) --------------------
    def add(self, kind: str, **values: Any) -> dict[str, Any]:
        item = {"id": str(uuid.uuid4()), "name": "", "description": "", "tags": [], **values}
        if kind == "ports":
            item.setdefault("allowed_address_pairs", [])
            item.setdefault("port_security_enabled", True)
            item.setdefault("security_groups", [])
            item.setdefault("mac_address", "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3]))
            item.setdefault("device_owner", "")
            item.setdefault("fixed_ips", [])
            for fixed in item["fixed_ips"]:
                fixed.setdefault("ip_address", self._allocate(fixed["subnet_id"]))
        if kind == "security-groups":
            item.setdefault("security_group_rules", [])
        if kind == "networks":
            item.setdefault("mtu", 1500)
            item.setdefault("port_security_enabled", True)
        if kind == "subnets":
            item.setdefault("ip_version", 4)
            item.setdefault("enable_dhcp", True)
        with self.lock:
            self.data[kind][item["id"]] = item
        return item

    def get(self, kind: str, item_id: str) -> dict[str, Any]:
        return self.data[kind][item_id]

    def _used(self, subnet_id: str) -> set[IPv4Address]:
        return {
            IPv4Address(f["ip_address"])
            for p in self.data["ports"].values()
            for f in p.get("fixed_ips", [])
            if f.get("subnet_id") == subnet_id and f.get("ip_address")
        }

    def _allocate(self, subnet_id: str) -> str:
        subnet = self.data["subnets"][subnet_id]
        used = self._used(subnet_id)
        for pool in subnet["allocation_pools"]:
            for value in range(int(IPv4Address(pool["start"])), int(IPv4Address(pool["end"])) + 1):
                if IPv4Address(value) not in used:
                    return str(IPv4Address(value))
        raise RuntimeError("IpAddressGenerationFailure")

    # HTTP -----------------------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Any:
            fake.requests.append((request.method, request.url.path))
            path = request.url.path
            open_paths = path.startswith("/identity") or path.rstrip("/") in ("/network", "/compute", "/compute/v2.1")
            if not open_paths and request.headers.get("x-auth-token") not in fake.tokens:
                return JSONResponse(
                    {"error": {"code": 401, "message": "The request you have made requires authentication."}},
                    status_code=401,
                )
            return await call_next(request)

        @app.get("/identity/v3")
        def identity_version() -> Any:
            return {
                "version": {
                    "id": "v3.14",
                    "status": "stable",
                    "links": [{"rel": "self", "href": f"{fake.base}/identity/v3/"}],
                }
            }

        @app.post("/identity/v3/auth/tokens")
        async def token(request: Request) -> Any:
            body = await request.json()
            password = body["auth"]["identity"].get("password", {}).get("user", {}).get("password")
            if password != PASSWORD:
                return JSONResponse({"error": {"code": 401, "message": "Invalid credentials"}}, status_code=401)
            value = uuid.uuid4().hex
            fake.tokens.add(value)
            catalog = [
                {
                    "type": "network",
                    "name": "neutron",
                    "id": "n",
                    "endpoints": [
                        {
                            "id": "n1",
                            "interface": "public",
                            "region": "RegionOne",
                            "region_id": "RegionOne",
                            "url": f"{fake.base}/network",
                        }
                    ],
                },
                {
                    "type": "compute",
                    "name": "nova",
                    "id": "c",
                    "endpoints": [
                        {
                            "id": "c1",
                            "interface": "public",
                            "region": "RegionOne",
                            "region_id": "RegionOne",
                            "url": f"{fake.base}/compute/v2.1",
                        }
                    ],
                },
                {
                    "type": "identity",
                    "name": "keystone",
                    "id": "i",
                    "endpoints": [
                        {
                            "id": "i1",
                            "interface": "public",
                            "region": "RegionOne",
                            "region_id": "RegionOne",
                            "url": f"{fake.base}/identity/v3",
                        }
                    ],
                },
            ]
            data = {
                "token": {
                    "methods": ["password"],
                    "expires_at": "2099-01-01T00:00:00.000000Z",
                    "issued_at": "2026-01-01T00:00:00.000000Z",
                    "user": {"id": "u1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
                    "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
                    "roles": [{"id": "r1", "name": "member"}],
                    "catalog": catalog,
                }
            }
            return JSONResponse(data, status_code=201, headers={"X-Subject-Token": value})

        @app.get("/network")
        @app.get("/network/")
        def network_versions() -> Any:
            return {
                "versions": [
                    {
                        "id": "v2.0",
                        "status": "CURRENT",
                        "links": [{"rel": "self", "href": f"{fake.base}/network/v2.0/"}],
                    }
                ]
            }

        @app.get("/network/v2.0/{kind}")
        def listing(kind: str, request: Request) -> Any:
            if kind not in FIELDS:
                return _error(404, "NotFound", f"no {kind}")
            items = list(fake.data[kind].values())
            for key, value in request.query_params.items():
                if key in ("limit", "marker", "fields"):
                    continue
                items = [i for i in items if str(i.get(key)) == value]
            return {kind.replace("-", "_"): items}

        @app.get("/network/v2.0/{kind}/{item_id}")
        def show(kind: str, item_id: str) -> Any:
            item = fake.data.get(kind, {}).get(item_id)
            if item is None:
                return _error(404, "NotFound", f"{FIELDS.get(kind, kind)} {item_id} could not be found")
            return {FIELDS[kind]: item}

        @app.post("/network/v2.0/{kind}")
        async def create(kind: str, request: Request) -> Any:
            body = (await request.json())[FIELDS[kind]]
            if kind == "security-group-rules":
                group = fake.data["security-groups"].get(body["security_group_id"])
                if group is None:
                    return _error(404, "SecurityGroupNotFound", "no such group")
                rule = fake.add(kind, **body)
                group["security_group_rules"].append(rule)
                return JSONResponse({FIELDS[kind]: rule}, status_code=201)
            return JSONResponse({FIELDS[kind]: fake.add(kind, **body)}, status_code=201)

        @app.put("/network/v2.0/{kind}/{item_id}")
        async def update(kind: str, item_id: str, request: Request) -> Any:
            item = fake.data.get(kind, {}).get(item_id)
            if item is None:
                return _error(404, "NotFound", f"{item_id} could not be found")
            body = (await request.json())[FIELDS[kind]]
            pairs = kind == "ports" and body.get("allowed_address_pairs")
            if pairs and not body.get("port_security_enabled", item["port_security_enabled"]):
                return _error(
                    409,
                    "AddressPairAndPortSecurityRequired",
                    "Port Security must be enabled in order to have allowed address pairs on a port.",
                )
            if kind == "subnets" and "allocation_pools" in body:
                cidr = IPv4Network(item["cidr"])
                for pool in body["allocation_pools"]:
                    first, last = IPv4Address(pool["start"]), IPv4Address(pool["end"])
                    if first not in cidr or last not in cidr or first > last:
                        return _error(400, "InvalidInput", f"allocation pool {pool} is not inside {cidr}")
                    if item.get("gateway_ip") and first <= IPv4Address(item["gateway_ip"]) <= last:
                        return _error(
                            409,
                            "GatewayConflictWithAllocationPools",
                            f"Gateway ip {item['gateway_ip']} conflicts with allocation pool {pool}",
                        )
            item.update(body)
            return {FIELDS[kind]: item}

        @app.delete("/network/v2.0/{kind}/{item_id}")
        def remove(kind: str, item_id: str) -> Any:
            if item_id not in fake.data.get(kind, {}):
                return _error(404, "NotFound", f"{item_id} could not be found")
            if kind == "security-groups" and any(item_id in p["security_groups"] for p in fake.data["ports"].values()):
                return _error(409, "SecurityGroupInUse", f"Security Group {item_id} in use.")
            item = fake.data[kind].pop(item_id)
            if kind == "security-group-rules":
                group = fake.data["security-groups"].get(item["security_group_id"])
                if group is not None:
                    group["security_group_rules"] = [r for r in group["security_group_rules"] if r["id"] != item_id]
            return Response(status_code=204)

        compute_version = {
            "id": "v2.1",
            "status": "CURRENT",
            "version": "2.90",
            "min_version": "2.1",
            "links": [{"rel": "self", "href": f"{fake.base}/compute/v2.1/"}],
        }

        @app.get("/compute")
        @app.get("/compute/")
        def compute_versions() -> Any:
            return {"versions": [compute_version]}

        @app.get("/compute/v2.1")
        @app.get("/compute/v2.1/")
        def compute_version_doc() -> Any:
            return {"version": compute_version}

        @app.post("/compute/v2.1/servers")
        async def create_server(request: Request) -> Any:
            body = (await request.json())["server"]
            server_id = str(uuid.uuid4())
            for network in body.get("networks", []):
                port = fake.data["ports"].get(network.get("port", ""))
                if port is None:
                    return JSONResponse({"badRequest": {"code": 400, "message": "Port not found"}}, status_code=400)
                port["device_id"], port["device_owner"] = server_id, "compute:nova"
            server = {
                "id": server_id,
                "name": body["name"],
                "status": "BUILD",
                "imageRef": body.get("imageRef"),
                "flavorRef": body.get("flavorRef"),
                "user_data": body.get("user_data"),
                "key_name": body.get("key_name"),
                "networks": body.get("networks", []),
                "metadata": body.get("metadata", {}),
                "links": [],
            }
            fake.servers[server_id] = server
            return JSONResponse({"server": {"id": server_id, "links": [], "adminPass": "unused"}}, status_code=202)

        @app.get("/compute/v2.1/servers/detail")
        def list_servers() -> Any:
            return {"servers": list(fake.servers.values())}

        @app.delete("/compute/v2.1/servers/{server_id}")
        def delete_server(server_id: str) -> Any:
            if fake.servers.pop(server_id, None) is None:
                return JSONResponse({"itemNotFound": {"code": 404, "message": "not found"}}, status_code=404)
            for port in fake.data["ports"].values():
                if port.get("device_id") == server_id:
                    port["device_id"], port["device_owner"] = "", ""
            return Response(status_code=204)

        @app.get("/compute/v2.1/servers/{server_id}")
        def show_server(server_id: str) -> Any:
            server = fake.servers.get(server_id)
            if server is None:
                return JSONResponse({"itemNotFound": {"code": 404, "message": "not found"}}, status_code=404)
            return {"server": server}

        return app


def make_openstack_world(fake: FakeOpenStack, network_mtu: int = 1450) -> dict[str, Any]:
    """The proposal's private half: tenant network 192.168.1.0/24 (Neutron's router at .1, DHCP from
    the whole subnet), the gateway's port at .253 with port security on and no pairs."""
    network = fake.add("networks", name="tenant", mtu=network_mtu)
    subnet = fake.add(
        "subnets",
        name="tenant-subnet",
        network_id=network["id"],
        cidr="192.168.1.0/24",
        gateway_ip="192.168.1.1",
        allocation_pools=[{"start": "192.168.1.2", "end": "192.168.1.254"}],
    )
    default = fake.add("security-groups", name="default", description="the admin's default group")
    port = fake.add(
        "ports",
        name="gateway-lan",
        network_id=network["id"],
        device_owner="compute:nova",
        fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "192.168.1.253"}],
        security_groups=[default["id"]],
    )
    return {"network": network, "subnet": subnet, "port": port, "default_group": default}
