"""The wire schema: every request and response body of the REST API, shared by the controller (which
validates them), the client, the CLI and the agent. Pydantic models only: importing this package
pulls in no web framework and no database, so a gateway carries it."""
