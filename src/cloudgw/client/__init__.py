"""Python client of the controller's REST API (httpx). The CLI and the agent use it; scripts can too.

from cloudgw.client import Client
api = Client("https://203.0.113.5:8443", token="cgw_...", ca="/etc/cloudgw/ca.pem")
api.create("sites", {"name": "private", "provider": "openstack"})
"""

from cloudgw.client.api import AgentClient, ApiError, Client, Unreachable, fetch_ca

__all__ = ["AgentClient", "ApiError", "Client", "Unreachable", "fetch_ca"]
