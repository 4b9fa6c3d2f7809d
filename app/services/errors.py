"""Domain errors that routes turn into HTTP answers (see app/main.py)."""


class NotFound(Exception):
    """The thing asked for does not exist (404)."""


class Unprocessable(Exception):
    """Well-formed, but not something Sweepyard can do (422), with where in the request it went wrong."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__(message)
        self.loc = loc


class Conflict(Exception):
    """The request does not fit the thing's current state (409)."""
