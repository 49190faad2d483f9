"""Exceptions raised by the qswap engine.

Every engine error is a :class:`QswapError` (a ``RuntimeError``) carrying the engine's message,
e.g. ``tensor 'model.layers.0.mlp.up_proj.weight' has wrong shape; expected [200, 96], got [96, 200]``.
Its ``code`` names the kind of failure; the subclasses below let callers catch one kind.
Requests the caller got wrong (bad arguments, a prompt too long) are also ``ValueError``.
"""

from __future__ import annotations


class QswapError(RuntimeError):
    """An error reported by the qswap engine."""

    code = "unknown"


class InvalidArgumentError(QswapError, ValueError):
    """The caller asked for something malformed: a tensor of the wrong shape or dtype, an unknown
    tensor name or scheme, a tensor that is not contiguous or not in CPU memory."""

    code = "invalid_argument"


class OutOfRangeError(QswapError, ValueError):
    """An index or length past a limit (a prompt longer than the model's context, a token id
    outside the vocabulary)."""

    code = "out_of_range"


class NotFoundError(QswapError):
    """A file or tensor that does not exist (a model directory without weights, an update that
    never received some required tensors)."""

    code = "not_found"


class DataLossError(QswapError):
    """Malformed or corrupt data: a truncated file, NaN or Inf weights."""

    code = "data_loss"


class FailedPreconditionError(QswapError):
    """The engine is not in a state that allows the call (an update in progress or already ended,
    generation after a failed in-place update)."""

    code = "failed_precondition"


class QswapIOError(QswapError):
    """The operating system refused (open, read, mmap, write)."""

    code = "io_error"


class UnimplementedError(QswapError):
    code = "unimplemented"


class AbortedError(QswapError):
    code = "aborted"


class UnavailableError(QswapError):
    """Transient: the engine cannot serve right now (e.g. an in-place update is running)."""

    code = "unavailable"


class InternalError(QswapError):
    """A bug in qswap: please report it."""

    code = "internal"


_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        OutOfRangeError,
        NotFoundError,
        DataLossError,
        FailedPreconditionError,
        QswapIOError,
        UnimplementedError,
        AbortedError,
        UnavailableError,
        InternalError,
    )
}


def _from_status(code: str, message: str) -> QswapError:
    """The exception for an engine Status (called by qswap._core)."""
    return _BY_CODE.get(code, QswapError)(message)


__all__ = [
    "QswapError",
    "InvalidArgumentError",
    "OutOfRangeError",
    "NotFoundError",
    "DataLossError",
    "FailedPreconditionError",
    "QswapIOError",
    "UnimplementedError",
    "AbortedError",
    "UnavailableError",
    "InternalError",
]
