"""Errors that name whose mistake they are.

:class:`UserModelError` is raised when the user's own model raises on the input sj-rga gives it (a model
built for another input size, another layout, another number of channels). It is chained to the model's
exception (``raise ... from error``), names the model's file and line where the exception arose, and says
what to try (the input layout, the input shape). The CLI reports it as a user's mistake (one line, exit 2).
"""
from __future__ import annotations

import traceback
from typing import Optional


class UserModelError(ValueError):
    """The user's model raised on the input it was given; ``__cause__`` is the model's own exception."""

    def __init__(self, message: str, *, location: Optional[str] = None):
        super().__init__(message if location is None else f"{message} (raised at {location})")
        self.location = location


def model_location(error: BaseException) -> Optional[str]:
    """``file:line`` of the innermost frame of ``error``'s traceback that lies outside torch and sj-rga
    (the user's model code), or None when every frame is theirs."""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        name = frame.filename.replace("\\", "/")
        if "/torch/" in name or "/sj_rga/" in name or "/spikingjelly/" in name:
            continue
        return f"{frame.filename}:{frame.lineno}"
    return None
