#!/usr/bin/env bash
# What the full data-plane benchmark needs besides cloudgw: the peers (nebula, tinc, openvpn) from
# Debian, and Debian 12's own wireguard-go build (0.0.20220316, no TUN offloads) unpacked beside the
# installed backports build, so both can be measured in one run; and ethtool and perf for bench/cases.sh's
# -lgro and -prof cases. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."
DEB12_DIR=${WG_DEB12_DIR:-$PWD/bench/.cache/wireguard-go-deb12}

missing=()
for cmd in nebula nebula-cert tincd openvpn openssl ethtool perf; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "bench: installing peers and tools (${missing[*]})"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nebula tinc openvpn openssl ethtool linux-perf >/dev/null
fi

if [[ ! -x $DEB12_DIR/usr/bin/wireguard-go ]]; then
  version=$(apt-cache policy wireguard-go | awk '/bookworm\/main/ {print prev} {prev=$1}' | head -n1)
  if [[ -z $version ]]; then
    echo "bench: no bookworm wireguard-go in the apt index; run apt-get update" >&2
    exit 1
  fi
  echo "bench: fetching Debian 12's own wireguard-go $version"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "wireguard-go=$version" >/dev/null)
  mkdir -p "$DEB12_DIR"
  dpkg-deb -x "$tmp"/wireguard-go_*.deb "$DEB12_DIR"
  rm -rf "$tmp"
fi
echo "bench: peers ready; Debian 12 wireguard-go: $("$DEB12_DIR/usr/bin/wireguard-go" --version | head -n1)"
