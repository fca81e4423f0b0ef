"""Every default the document, the topology, the API, the CLI, the lab and the database share, defined
once (pure)."""

TUNNEL_MTU = 1420  # 1500 minus WireGuard over IPv6 (80): fits every 1500-byte WAN; lowered per path
LISTEN_PORT = 51820  # WireGuard's UDP port (behind 1:1 NAT: the same port outside)
KEEPALIVE = 25  # seconds between keepalives: keeps NAT mappings open
TUNNEL_INTERFACE = "cgw0"
HA_PORT_OFFSET = 1  # a pair's hellos and role notices use UDP listen_port + 1 (51821)
VXLAN_OVERHEAD = 50  # the L2 mode: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 (1420 -> 1370)
