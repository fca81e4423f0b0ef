#!/usr/bin/env bash
# The lab demo of the stretched subnet: installs what is needed, builds the seed scenario (a private
# and a public cloud, ten VMs each, one 192.168.1.0/24), and checks every VM pair across the clouds.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: run as root (it builds network namespaces): sudo $0" >&2
  exit 2
fi
bash scripts/setup.sh
cloudgw=.venv/bin/cloudgw
scenario=${SCENARIO:-seed}
"$cloudgw" lab down >/dev/null 2>&1 || true
"$cloudgw" lab up --scenario "$scenario"
echo
"$cloudgw" lab check
cat <<'MSG'

The stretched subnet is up. Explore it:
  cloudgw status                                       the controller's view: gateways, connections, health
  cloudgw lab status                                   agents, tunnels, learned endpoints
  cloudgw lab vm add public                            boot a new public VM; the private cloud reaches it
  cloudgw lab exec private-vm1 -- ping -c 3 192.168.1.11
  cloudgw lab exec public-vm11 -- curl -s http://198.51.100.10/   the Internet host sees the public gateway
  cloudgw nat egress set public lab via --via private  ...and now the private one
  cloudgw lab exec public-vm11 -- ip neigh            the public VM sees .1 "on its LAN"
  cloudgw lab exec private-gw -- ip route show proto 207
  cloudgw lab exec private-gw -- nft list table inet cloudgw
  cloudgw lab restart private-gw                      restart an agent; traffic keeps flowing
Tear it down:
  cloudgw lab down
MSG
