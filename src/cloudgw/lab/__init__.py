"""The lab: whole scenarios (clouds, VMs, gateways, a WAN with 1:1 NAT, an Internet host) built from
network namespaces on one Linux machine. The demo, the development bench and the integration test bed."""
