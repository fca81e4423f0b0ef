"""The lab's cloud: a `lab` site's VMs are namespaces on its LAN bridge, which the controller of that
lab (CLOUDGW_LAB, set by `cloudgw lab up`) can start and stop for burst policies, as a cloud's API
would. The controller runs in a network namespace whose mounts do not reach the host, so it cannot
create a namespace itself: it asks the lab supervisor (a host process) with a request file and waits
for the reply file, as `cloudgw lab vm add|delete` would do it. The lab record is the ledger: a VM is
found again by its site and address."""

from __future__ import annotations

import json
import time
import uuid
from ipaddress import IPv4Address
from typing import Any

from cloudgw.files import write_json_atomic
from cloudgw.lab import lab as lablib
from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.supervisor import VM_REPLIES, VM_REQUESTS
from cloudgw.providers.base import ProviderError, VmSpec
from cloudgw.providers.registry import Passive

ANSWER_WITHIN = 60.0  # seconds: booting a lab VM takes about one


class LabCloud(Passive):
    def __init__(self, site: str, lab: str) -> None:
        super().__init__(site, "lab")
        self.paths = LabPaths(lab)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        ident = uuid.uuid4().hex
        (self.paths.root / VM_REPLIES).mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.paths.root / VM_REQUESTS / f"{ident}.json", {**request, "id": ident})
        reply = self.paths.root / VM_REPLIES / f"{ident}.json"
        deadline = time.monotonic() + ANSWER_WITHIN
        while not reply.exists():  # the supervisor answers within its loop (50 ms) plus the work
            if time.monotonic() > deadline:
                raise ProviderError(f"the lab supervisor did not answer within {ANSWER_WITHIN:.0f} s", transient=True)
            time.sleep(0.05)
        answer: dict[str, Any] = json.loads(reply.read_text())
        reply.unlink(missing_ok=True)
        if not answer.get("ok"):
            raise ProviderError(f"the lab refused: {answer.get('error', 'no reason given')}")
        return answer

    def launch_vm(self, vm: VmSpec) -> str:
        return str(self._ask({"op": "add", "site": self.site, "address": str(vm.ip)})["name"])

    def terminate_vm(self, instance: str) -> None:
        if instance in {v["name"] for v in lablib.extra_vms(self.paths)}:
            self._ask({"op": "delete", "name": instance})

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        # the lab has no tags: its added VMs at this site, matched to the policy's rows by address
        return {IPv4Address(v["address"]): v["name"] for v in lablib.extra_vms(self.paths) if v["site"] == self.site}
