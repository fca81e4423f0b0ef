"""The controller: the source of truth and the mapping service. Serves the REST API, the gateways'
watch feed, /metrics and the dashboard."""
