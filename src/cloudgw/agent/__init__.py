"""The gateway agent: holds the gateway's key, follows its desired-state document, reconciles the
kernel to it, and learns the endpoints on its LAN."""
