"""The one error type the CLI shows as a message instead of a traceback."""


class UserError(Exception):
    """A mistake the user can fix; str() is a one-line message saying how."""
