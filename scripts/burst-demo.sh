#!/usr/bin/env bash
# Burst, in the lab: the private cloud fills up, the controller rents VMs in the public cloud with
# addresses of the one subnet, the private VMs reach them, and they go away when demand falls.
# Demand here is the share of the private pool in use (a pool-usage signal): booting and removing
# private VMs pushes it up and down. docs/burst.md explains every step.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "burst-demo: run as root (it builds network namespaces): sudo $0" >&2
  exit 2
fi
[[ -x .venv/bin/cloudgw ]] || bash scripts/setup.sh
cloudgw=.venv/bin/cloudgw
lab=${LAB:-cgwburst}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_until() { # SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds, or fail after SECONDS
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "burst-demo: gave up waiting for $what" >&2; exit 1; fi
    sleep 1
  done
}
burst_vms() { "$cloudgw" burst status web -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vms"]))'; }
has_vms() { [[ $(burst_vms) == "$1" ]]; }

"$cloudgw" lab down --name "$lab" >/dev/null 2>&1 || true
trap '"$cloudgw" lab down --name "$lab" >/dev/null 2>&1 || true' EXIT
say "a private cloud with 4 of its 10 addresses in use, a public cloud with room"
"$cloudgw" lab up --scenario burst --name "$lab"
eval "$("$cloudgw" lab env --name "$lab")"

say "a burst policy: above 55 % of the private pool in use, rent 2 public VMs (at most 2)"
"$cloudgw" burst policy add web --network lab --site public --signal-kind pool --signal-pool private-lab \
  --out-above 0.55 --in-below 0.45 --max 2 --step 2 --warmup 2 --cooldown 5 --image lab-vm --size small
wait_until 60 "the first reading" "$cloudgw" burst status web
"$cloudgw" burst status web

say "demand rises: two more private VMs (6 of 10)"
"$cloudgw" lab vm add private --name "$lab"
"$cloudgw" lab vm add private --name "$lab"
wait_until 60 "two burst VMs" has_vms 2
"$cloudgw" burst status web

say "the private VMs reach the new public VMs: one subnet, nothing renumbered"
for address in 192.168.1.12 192.168.1.13; do
  wait_until 30 "private-vm1 -> $address" "$cloudgw" lab exec private-vm1 --name "$lab" -- ping -c 1 -W 1 "$address"
  "$cloudgw" lab exec private-vm1 --name "$lab" -- ping -c 2 "$address"
done

say "demand falls: the two private VMs leave; after the cool-down the public VMs are drained and removed"
"$cloudgw" lab vm delete private-vm5 --name "$lab"
"$cloudgw" lab vm delete private-vm6 --name "$lab"
wait_until 90 "the burst VMs to go" has_vms 0
"$cloudgw" burst history web
say "done: every decision above, with its reason"
