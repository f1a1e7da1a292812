"""User-facing errors: the CLI prints their message as one line and exits non-zero; Ctrl-C that libraries
wrap or swallow still stops the command."""

import signal
import threading
from contextlib import contextmanager


class EdgeDinoError(Exception):
    """A problem with what the user gave us (a file, a flag, a size), not a bug."""

    exit_code = 2  # what the command line exits with: 2 for bad input


class RunError(EdgeDinoError):
    """A run that started and could not go on (its loss diverged, the disk filled up): exit status 1."""

    exit_code = 1


def reraise_interrupt(e: BaseException) -> None:
    """Raise KeyboardInterrupt if `e` is Ctrl-C wrapped in a library's own error (torch.onnx's TorchExportError
    wraps it), so that a broad `except Exception` never swallows Ctrl-C."""
    todo, seen = [e], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]


@contextmanager
def sticky_interrupt():
    """Ctrl-C during a library call ends the call's caller even when the library swallows it (torch.onnx wraps
    the KeyboardInterrupt, then retries with another capture strategy that succeeds): the signal is remembered
    and raised again when the call returns. Main thread only, where Python delivers signals, and only where Ctrl-C
    raises KeyboardInterrupt (a process that ignores SIGINT, or handles it itself, keeps its choice)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    hits = []

    def remember(signum, frame):
        hits.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    except BaseException:
        if hits:  # whatever the library made of the interrupt
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if hits:
        raise KeyboardInterrupt


def did_you_mean(name: str, known) -> str:
    """"; did you mean 'x'?" for the known name closest to a mistyped one, or ''."""
    import difflib

    near = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


class CheckpointError(EdgeDinoError, ValueError):
    """Weights that cannot be read or do not fit the model."""


class InputSizeError(EdgeDinoError, ValueError):
    """An input whose sides are not multiples of the model's stride (edgedino never crops silently)."""


class ConfigError(EdgeDinoError, ValueError):
    """An unknown model name or an impossible setting."""
