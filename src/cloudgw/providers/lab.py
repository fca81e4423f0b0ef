"""The lab's cloud: a `lab` site's VMs are namespaces on its LAN bridge (cloudgw.lab), which the
controller of that lab (CLOUDGW_LAB) can start and stop for burst policies, as a cloud's API would.
The lab record is the ledger: a VM is found again by its address. There is nothing else to prepare
in this cloud (its preflight and reconcile are the passive ones)."""

from __future__ import annotations

from ipaddress import IPv4Address

from cloudgw.errors import LabError
from cloudgw.lab import lab as lablib
from cloudgw.lab.runstate import LabPaths
from cloudgw.providers.base import ProviderError, VmSpec
from cloudgw.providers.registry import Passive


class LabCloud(Passive):
    def __init__(self, site: str, lab: str) -> None:
        super().__init__(site, "lab")
        self.paths = LabPaths(lab)

    def launch_vm(self, vm: VmSpec) -> str:
        try:
            name, _address, _up = lablib.add_vm(self.paths, lablib.load_lab_scenario(self.paths), self.site, str(vm.ip))
        except LabError as exc:
            raise ProviderError(f"the lab could not boot {vm.ip}: {exc}") from None
        return name

    def terminate_vm(self, instance: str) -> None:
        if instance not in {v["name"] for v in lablib.extra_vms(self.paths)}:
            return  # already gone
        try:
            lablib.delete_vm(self.paths, instance)
        except LabError as exc:
            raise ProviderError(f"the lab could not remove {instance}: {exc}") from None

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        # the lab has no tags: its added VMs at this site, matched to the policy's rows by address
        return {IPv4Address(v["address"]): v["name"] for v in lablib.extra_vms(self.paths) if v["site"] == self.site}
