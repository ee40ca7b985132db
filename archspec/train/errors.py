"""Errors of `archspec train` that are the user's to fix: a data folder, a checkpoint, an option."""
from __future__ import annotations


class TrainError(Exception):
    """A mistake the user can fix (exit code 2): what is wrong, where, and a hint.

    `quiet` marks the copy raised on the other ranks of a distributed run when one rank found
    the problem, so that the message is printed once, by the rank that found it.
    """

    def __init__(self, message: str, hint: str | None = None, quiet: bool = False):
        self.message, self.hint, self.quiet = message, hint, quiet
        super().__init__(message + (f"\n  hint: {hint}" if hint else ""))
