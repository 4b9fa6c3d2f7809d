"""Domain errors that routes turn into HTTP answers (see app/main.py)."""


class NotFound(Exception):
    """The thing asked for does not exist (404)."""


class Conflict(Exception):
    """The request does not fit the thing's current state (409)."""
