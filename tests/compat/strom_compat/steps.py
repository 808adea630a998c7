"""Name the client and the Kafka API in a failure, so a broker author knows where to look."""

from __future__ import annotations

import contextlib


class StepFailed(AssertionError):
    pass


@contextlib.contextmanager
def step(client: str, what: str):
    try:
        yield
    except StepFailed:
        raise
    except Exception as error:  # re-raised with context; pytest outcomes are BaseException
        raise StepFailed(f"{client}: {what} failed: {type(error).__name__}: {error}") from error
