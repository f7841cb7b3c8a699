"""Error types. Every error a user can cause is an InputError with a location.

The CLI turns an InputError into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations


class TweedError(Exception):
    """Base class of Tweed's own errors."""


class InputError(TweedError):
    """Bad user input: names the file, the location inside it, and what was expected."""

    def __init__(self, message: str, *, source: str | None = None, location: str | None = None):
        self.message = message
        self.source = source
        self.location = location
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.source and self.location:
            where = f"{self.source}: at {self.location}: "
        elif self.source:
            where = f"{self.source}: "
        elif self.location:
            where = f"at {self.location}: "
        return (where + self.message).replace("\n", " ")

    def with_source(self, source: str) -> "InputError":
        """A copy that names ``source`` when the error did not know its file."""
        if self.source:
            return self
        return InputError(self.message, source=source, location=self.location)


class IRError(TweedError):
    """The IR violates an invariant (raised by the verifier, quoting the offending node)."""


class FitError(TweedError):
    """A fit did not converge and the caller asked for a number that needs it."""

    def __init__(self, message: str, result=None):
        self.result = result
        super().__init__(message)
