#!/usr/bin/env bash
# Installs the Debian packages cloudgw needs on a gateway, in the lab and in CI.
# Idempotent: skips apt entirely when every command is already present.
# wireguard-go comes from bookworm-backports: that build has TUN GSO/GRO offloads
# (about 6x the throughput of Debian 12's own build, see docs/benchmarks.md).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

want_cmds=(nft ping wireguard-go wg iperf3 chromium tcpdump conntrack socat ss prometheus)
missing=0
for c in "${want_cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || missing=1; done
# Debian's own python3 needs python3-venv for `python3 -m venv`.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing=1
if [[ $missing -eq 0 ]] && wireguard-go --version 2>/dev/null | grep -q 2023; then
  echo "system packages: already installed"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-system: run as root (apt-get is needed)" >&2
  exit 2
fi

backports=/etc/apt/sources.list.d/cloudgw-backports.sources
if [[ ! -f $backports ]] && ! grep -rqs bookworm-backports /etc/apt/sources.list.d/ /etc/apt/sources.list; then
  # Reuse the mirror the machine already uses for bookworm (no host name hard-coded here).
  src=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
  if [[ -n $src ]]; then
    awk 'BEGIN{RS="";ORS="\n\n"} NR==1' "$src" | sed 's/^Suites:.*/Suites: bookworm-backports/' > "$backports"
  else
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/cloudgw-backports.list
  fi
fi

echo "system packages: apt-get update"
apt-get update -qq
echo "system packages: installing (nftables, iputils-ping, wireguard, iperf3, chromium, prometheus, ...)"
apt-get install -y -qq --no-install-recommends \
  nftables iputils-ping wireguard-tools iperf3 tcpdump conntrack socat kmod procps iproute2 \
  ca-certificates git make >/dev/null
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
fi
apt-get install -y -qq -t bookworm-backports wireguard-go >/dev/null
apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
# The burst tests read demand from a real Prometheus server, which they start themselves on
# 127.0.0.1: only the binary is wanted, so the package's own service is kept from starting
# (policy-rc.d 101 = "do not start", while apt runs; removed after unless it was there before).
guard=/usr/sbin/policy-rc.d
own_guard=0
if [[ ! -e $guard ]]; then printf '#!/bin/sh\nexit 101\n' > "$guard" && chmod 755 "$guard" && own_guard=1; fi
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if [[ $own_guard -eq 1 ]]; then rm -f "$guard"; fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet prometheus 2>/dev/null; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
echo "system packages: done ($(wireguard-go --version | head -n1))"
