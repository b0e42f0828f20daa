"""How the widgets' states turn exceptions into the message a user reads.

A callback of a widget must never let an exception escape: in JupyterLab it would land in
the log console, in Voila nowhere, and the user would see a button that does nothing.
State methods that a button calls are decorated with ``reports_errors``: a ``CvatkitError``
becomes its own message, an ``OSError`` a sentence naming the file, anything else (a bug)
its type and text, with the traceback sent to the ``cvatkit.widgets`` logger.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from cvatkit import CvatkitError, brief, redacted

log = logging.getLogger("cvatkit.widgets")
F = TypeVar("F", bound=Callable[..., Any])


def error_text(exc: BaseException) -> str:
    """The message a user reads for ``exc`` (never a traceback, never a password in an
    address)."""
    if isinstance(exc, CvatkitError):
        return brief(redacted(str(exc)))
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return brief(redacted(f"{exc.strerror}{where}"))
    log.error("unexpected error in a cvatkit widget", exc_info=exc)
    return brief(redacted(f"unexpected {type(exc).__name__}: {exc} (a bug in cvatkit; "
                          "please report it)"))


def reports_errors(field: str = "error") -> Callable[[F], F]:
    """Decorate a state method: clear ``self.<field>`` first, put the message of any
    exception there, and return None instead of raising."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            setattr(self, field, "")
            try:
                return method(self, *args, **kwargs)
            except Exception as e:  # noqa: BLE001  (shown to the user, see error_text)
                setattr(self, field, error_text(e))
                return None

        return wrapper  # type: ignore[return-value]

    return decorate


def error_html(text: str) -> str:
    """``text`` as a red paragraph for an ``ipywidgets.HTML`` (empty stays empty)."""
    if not text:
        return ""
    return (f'<div style="color:#b00020;white-space:pre-wrap">'
            f"{html.escape(text)}</div>")


def pre_html(text: str) -> str:
    """``text`` in a ``<pre>`` block."""
    return f"<pre style=\"margin:0\">{html.escape(text)}</pre>" if text else ""


def plain_errors(shell=None) -> bool:
    """In a notebook, show a ``CvatkitError`` (a mistake in the input, a server that says
    no) as its message, not as a traceback: the cell still fails, so a papermill run
    stops there with that message. Whether a kernel was there to set it up."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False

    def show(self, etype, value, tb, tb_offset=None):
        stb = [f"{etype.__name__}: {brief(redacted(str(value)))}"]
        self._showtraceback(etype, value, stb)  # the error output, as a traceback would be
        return stb

    shell.set_custom_exc((CvatkitError,), show)
    return True
