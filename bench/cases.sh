# Extra cases for ../shared/bench/peers.sh (loaded with -f), so cloudgw is measured by the same
# harness, on the same topology, interleaved with the other tools in one run.
#   cloudgw            the cloudgw agent, programming wireguard-go (backports), routes and nft from a
#                      document: what a real gateway runs
#   cloudgw-gogc100    the same with wireguard-go at Go's default GOGC=100 (cloudgw starts it with 50):
#                      the side-by-side check that the memory setting costs no throughput
#   wireguard-go-deb12 bare wireguard-go, Debian 12's own build (no TUN offloads)
#   wireguard-go-setsid bare wireguard-go started in a session of its own (setsid), as cloudgw's agent
#                      started it until issue 17: a new session is a new scheduler autogroup
#   cloudgw-1400, wireguard-go-1400: the same two on a WAN whose MTU is 1400 (both ends); cloudgw finds
#                      the tunnel MTU itself, bare wireguard-go gets 1320 (1400 - 80) set by hand
# Taking cloudgw apart (the agents are stopped with SIGSTOP once the tunnel works, so nothing re-applies):
#   cloudgw-noagent    the data plane as programmed, agents stopped
#   cloudgw-nonat      ... and the NAT chains deleted (no NAT hooks)
#   cloudgw-notable    ... and the whole `inet cloudgw` table deleted (no netfilter but peers.sh's guard)
#   cloudgw-noct       ... and, instead, the NAT chains and every `ct state`/`ct status` rule deleted: the
#                      other rules stay, connection tracking's hooks are unregistered (nothing uses them)
# Variants and extra measurements:
#   cloudgw-lgro, wireguard-go-lgro: GRO and UDP GRO forwarding on both gateways' LAN veths
#   cloudgw-noq, wireguard-go-noq: the tunnel device's qdisc replaced by noqueue on both gateways (tun
#                      never stops its queue, so its default pfifo_fast only adds an enqueue per packet)
#   cloudgw-rates, wireguard-go-rates: UDP also offered at fixed rates (tests udp300 ... udp800, Mbit/s;
#                      UDP_RATES="..." for others) before the harness's own tests
#   cloudgw-prof, cloudgw-gogc100-prof, wireguard-go-prof: `perf record -a -g` for 5 s in the middle of
#                      the UDP test
#                      (bench/perfwatch.sh; files in $PERF_DIR, default /tmp/cloudgw-perf)
# Needs CLOUDGW (the cloudgw command) and WG_DEB12_DIR (bench/install-peers.sh makes both ready).

cloudgw_doc() { # SIDE -> a gateway document on stdout
  local me=$1 other site_me site_other lan_me lan_other net_me net_other vm_other wan_other
  if [ "$me" = A ]; then
    other=B lan_me=$GWA_LAN lan_other=$GWB_LAN net_me=$NETA net_other=$NETB vm_other=$VMB_IP wan_other=$WAN_B
  else
    other=A lan_me=$GWB_LAN lan_other=$GWA_LAN net_me=$NETB net_other=$NETA vm_other=$VMA_IP wan_other=$WAN_A
  fi
  site_me=$(echo "$me" | tr AB ab); site_other=$(echo "$other" | tr AB ab)
  cat <<DOC
gateway: {name: gw-$site_me, site: $site_me, wan_interface: pb-wan}
networks:
  - name: bench
    cidr: 10.0.0.0/14
    lan_interface: pb-lan
    lan_address: $lan_me
    pools: [{site: $site_me, range: $net_me}, {site: $site_other, range: $net_other}]
    remote_endpoints: [{ip: $vm_other, gateway: gw-$site_other}]
peers:
  - name: gw-$site_other
    site: $site_other
    public_key: "$(cat "$WORK/cgw$other.pub")"
    endpoint: "$wan_other:51820"
    lan_addresses: [$lan_other]
DOC
}

case_cloudgw() {
  local n s pid
  for n in A B; do
    nsx pb-gw$n "$CLOUDGW" agent init --state-dir "$WORK/cgw$n/state" >"$WORK/cgw$n.pub" || return 1
  done
  for n in A B; do
    cloudgw_doc $n >"$WORK/cgw$n.yaml"
    daemon pb-gw$n cgw$n "$CLOUDGW" agent run --state "$WORK/cgw$n.yaml" --state-dir "$WORK/cgw$n/state" \
      --run-dir "$WORK/cgw$n/run" --wg-socket-dir "$WORK/cgw$n/wg" --no-learn --metrics '' --interval 30 \
      --teardown-on-exit
  done
  # wireguard-go runs in its own process group (it outlives an agent restart); count its CPU too
  for n in A B; do
    for s in $(seq 100); do [ -s "$WORK/cgw$n/run/wireguard-go-cgw0.pid" ] && break; sleep 0.1; done
    pid=$(cat "$WORK/cgw$n/run/wireguard-go-cgw0.pid" 2>/dev/null) || return 1
    TUN_PIDS+=("$pid")
  done
  CASE_IFACE=cgw0
  CASE_DESC="cloudgw agent: wireguard-go (backports) + host routes + proxy ARP + nft (anti-spoofing, MSS clamp, NAPT, stateful filter), UDP/51820"
  CASE_VERSION="cloudgw $("$CLOUDGW" --version | awk '{print $2}'), wireguard-go $(wireguard-go --version 2>/dev/null | awk '/wireguard-go/{print $2}')"
}

case_cloudgw_gogc100() {
  CLOUDGW_AGENT_WG_GOGC=100 case_cloudgw || return 1
  CASE_DESC="$CASE_DESC; wireguard-go with GOGC=100 (Go's default)"
}

case_wireguard_go_deb12() {
  PATH="$WG_DEB12_DIR/usr/bin:$PATH" case_wireguard_go
}

case_wireguard_go_setsid() {
  local s
  if [ ! -f "$WORK/wgA.key" ]; then
    wg genkey >"$WORK/wgA.key"; wg genkey >"$WORK/wgB.key"
    chmod 600 "$WORK"/wg?.key
  fi
  local pubA pubB; pubA=$(wg pubkey <"$WORK/wgA.key"); pubB=$(wg pubkey <"$WORK/wgB.key")
  daemon pb-gwA wgA env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=verbose setsid wireguard-go -f pb-wgA
  daemon pb-gwB wgB env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=verbose setsid wireguard-go -f pb-wgB
  for s in $(seq 50); do
    [ -S /var/run/wireguard/pb-wgA.sock ] && [ -S /var/run/wireguard/pb-wgB.sock ] && break; sleep 0.1
  done
  nsx pb-gwA wg set pb-wgA private-key "$WORK/wgA.key" listen-port 51820 \
      peer "$pubB" allowed-ips $OVL_B/32,$NETB endpoint $WAN_B:51820 || return 1
  nsx pb-gwB wg set pb-wgB private-key "$WORK/wgB.key" listen-port 51820 \
      peer "$pubA" allowed-ips $OVL_A/32,$NETA endpoint $WAN_A:51820 || return 1
  nsx pb-gwA ip addr add $OVL_A/24 dev pb-wgA; nsx pb-gwA ip link set pb-wgA up
  nsx pb-gwB ip addr add $OVL_B/24 dev pb-wgB; nsx pb-gwB ip link set pb-wgB up
  nsx pb-gwA ip route add $NETB dev pb-wgA
  nsx pb-gwB ip route add $NETA dev pb-wgB
  CASE_IFACE=pb-wgA CASE_DESC="bare wireguard-go in a session of its own (setsid): its own scheduler autogroup"
  CASE_VERSION="wireguard-go $(wireguard-go --version 2>/dev/null | awk '/wireguard-go/{print $2}')"
}

wan_mtu_1400() { local ns; for ns in pb-gwA pb-gwB; do nsx $ns ip link set pb-wan mtu 1400 || return 1; done; }

case_cloudgw_1400() {
  wan_mtu_1400 && case_cloudgw || return 1
  CASE_DESC="$CASE_DESC; WAN MTU 1400, tunnel MTU found by the agent"
}

case_wireguard_go_1400() {
  wan_mtu_1400 && case_wireguard_go || return 1
  nsx pb-gwA ip link set pb-wgA mtu 1320 && nsx pb-gwB ip link set pb-wgB mtu 1320 || return 1
  CASE_DESC="$CASE_DESC; WAN MTU 1400, tunnel MTU 1320 set by hand"
}

# cloudgw, then its agents stopped (SIGSTOP: no CPU, nothing re-applied); the data plane stays as programmed
cloudgw_stopped() {
  local n agents
  case_cloudgw || return 1
  agents=("${PIDS[@]: -2}")
  wait_tunnel "$(now)" || return 1
  for n in A B; do nsx pb-gw$n nft list table inet cloudgw >/dev/null || return 1; done
  kill -STOP "${agents[@]}" && STOPPED+=("${agents[@]}")
}
# a stopped agent must be woken to hear the harness's TERM (its teardown stops its wireguard-go)
STOPPED=()
eval "$(declare -f kill_pids | sed '1s/kill_pids/peers_kill_pids/')"
kill_pids() { [ ${#STOPPED[@]} -gt 0 ] && kill -CONT "${STOPPED[@]}" 2>/dev/null; STOPPED=(); peers_kill_pids; }

case_cloudgw_noagent() { cloudgw_stopped || return 1; CASE_DESC="$CASE_DESC; agents stopped after setup"; }

# NS -> the NAT chains of cloudgw's table deleted (prerouting exists only with port forwards)
delete_nat_chains() {
  nsx $1 nft delete chain inet cloudgw postrouting || return 1
  ! nsx $1 nft list chain inet cloudgw prerouting >/dev/null 2>&1 || nsx $1 nft delete chain inet cloudgw prerouting
}

case_cloudgw_nonat() {
  local n
  cloudgw_stopped || return 1
  for n in A B; do delete_nat_chains pb-gw$n || return 1; done
  CASE_DESC="$CASE_DESC; agents stopped, NAT chains deleted"
}

case_cloudgw_notable() {
  local n
  cloudgw_stopped || return 1
  for n in A B; do nsx pb-gw$n nft delete table inet cloudgw || return 1; done
  CASE_DESC="$CASE_DESC; agents stopped, table deleted"
}

case_cloudgw_noct() {
  local n chain h
  cloudgw_stopped || return 1
  for n in A B; do
    delete_nat_chains pb-gw$n || return 1
    # one listing: the chain and handle of every rule that reads connection tracking
    while read -r chain h; do
      nsx pb-gw$n nft delete rule inet cloudgw "$chain" handle "$h" || return 1
    done < <(nsx pb-gw$n nft -a list table inet cloudgw | awk '/^\tchain /{c=$2} / ct (state|status) /{print c, $NF}')
    ! nsx pb-gw$n nft list table inet cloudgw | grep -qE " ct (state|status) |masquerade|dnat" || return 1
  done
  CASE_DESC="$CASE_DESC; agents stopped, NAT chains and ct rules deleted (no connection tracking)"
}

tun_noqueue() { local n; for n in A B; do nsx pb-gw$n tc qdisc replace dev "${1//@/$n}" root noqueue || return 1; done; }
case_cloudgw_noq() {
  case_cloudgw && wait_tunnel "$(now)" && tun_noqueue cgw0 || return 1
  CASE_DESC="$CASE_DESC; tunnel device qdisc noqueue"
}
case_wireguard_go_noq() { case_wireguard_go && tun_noqueue pb-wg@ || return 1; CASE_DESC="$CASE_DESC; tunnel device qdisc noqueue"; }

lan_gro() { local ns; for ns in pb-gwA pb-gwB; do nsx $ns ethtool -K pb-lan gro on rx-udp-gro-forwarding on >/dev/null || return 1; done; }
case_cloudgw_lgro() { case_cloudgw && lan_gro || return 1; CASE_DESC="$CASE_DESC; LAN veths: gro, rx-udp-gro-forwarding on"; }
case_wireguard_go_lgro() { case_wireguard_go && lan_gro || return 1; CASE_DESC="$CASE_DESC; LAN veths: gro, rx-udp-gro-forwarding on"; }

# UDP offered at fixed rates below and around the overload test's result (run_case's $cs and $rep are
# visible here); the harness's own tests follow
udp_rates() {
  wait_tunnel "$(now)" || return 1
  local r; for r in ${UDP_RATES:-300 400 500 600 700 800}; do iperf_test "$cs" "$rep" udp$r -u -b ${r}M -l $UDP_LEN; done
}
case_cloudgw_rates() { case_cloudgw && udp_rates; }
case_wireguard_go_rates() { case_wireguard_go && udp_rates; }

perf_watch() { mkdir -p "${PERF_DIR:=/tmp/cloudgw-perf}" && helper pb-gwA perf "$(dirname "${BASH_SOURCE[0]}")/perfwatch.sh" "$PERF_DIR/$1"; }
case_cloudgw_prof() { case_cloudgw && perf_watch cloudgw; }
case_cloudgw_gogc100_prof() { case_cloudgw_gogc100 && perf_watch gogc100; }
case_wireguard_go_prof() { case_wireguard_go && perf_watch wireguard-go; }

CASES+=(cloudgw cloudgw-gogc100 wireguard-go-deb12 wireguard-go-setsid cloudgw-1400 wireguard-go-1400)
CASES+=(cloudgw-noagent cloudgw-nonat cloudgw-notable cloudgw-noct cloudgw-noq wireguard-go-noq cloudgw-lgro wireguard-go-lgro cloudgw-rates wireguard-go-rates)
CASES+=(cloudgw-prof cloudgw-gogc100-prof wireguard-go-prof)
