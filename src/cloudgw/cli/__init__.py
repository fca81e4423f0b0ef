"""The `cloudgw` command."""
