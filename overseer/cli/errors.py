"""The one error the command line reports itself: a problem the user can fix."""

from __future__ import annotations

# Exit codes: what a script calling overseer can tell apart.
OK = 0
GRAPH_FAILED = 1
ERROR = 2


class CliError(Exception):
    """Printed as one line on stderr, without a traceback; the process exits with ``code``."""

    def __init__(self, message: str, *, code: int = ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
