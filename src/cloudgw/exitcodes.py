"""Named exit codes, so systemd and tests can tell a configuration error from a runtime fault."""

OK = 0
FAILED = 1  # refused or failed at run time; the message says why
USAGE = 2  # bad command line (typer/click use 2 as well)
UNAVAILABLE = 69  # a dependency is missing or unreachable (EX_UNAVAILABLE)
INTERNAL = 70  # a bug (EX_SOFTWARE)
CONFIG = 78  # the configuration or desired-state document is invalid (EX_CONFIG); do not restart
