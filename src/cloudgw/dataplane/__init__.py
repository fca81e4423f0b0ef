"""The data plane: render a document into kernel objects (pure), diff against what the kernel has
(pure), and apply the plan (netlink, WireGuard UAPI, nftables). Python is never in the packet path."""
