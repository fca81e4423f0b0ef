"""cloudgw: stretch one IP subnet across clouds and sites through encrypted gateways."""

__version__ = "0.1.0"
