"""What TensorFlow prints: nothing but errors in the CLI, notebooks and the app, unless
asked (``CVATKIT_VERBOSE=1`` or ``cvatkit --verbose``); everything in a run's
``trainer.log``.

TensorFlow's C++ side reads ``TF_CPP_MIN_LOG_LEVEL`` once, when it loads, so the level is
set when cvatkit is imported (a value the user set is left alone). Its Python side logs
through the ``tensorflow`` and ``absl`` loggers and warns through ``warnings``. urllib3's
notes on the requests it tries again are hidden the same way: the error that ends the
command says what went wrong.
"""

from __future__ import annotations

import logging
import os
import warnings

VERBOSE_ENV = "CVATKIT_VERBOSE"
TF_LOG_ENV = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_LEVEL = "3"  # C++: fatal errors only (CUDA probing and oneDNN notes are 'errors')
_USERS_LEVEL = os.environ.get(TF_LOG_ENV)
_LOGGERS = ("tensorflow", "absl", "h5py", "urllib3")
_WARNING_MODULES = r"(tensorflow|tf_keras|keras|official|absl)(\.|$)"


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up lines, logging and warnings unless verbose; or, when
    verbose, let them through again (before TensorFlow is loaded, for its C++ lines)."""
    verbose = is_verbose()
    if _USERS_LEVEL is None:
        if verbose:
            os.environ.pop(TF_LOG_ENV, None)
        else:
            os.environ[TF_LOG_ENV] = _QUIET_LEVEL
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)
    ours = [f for f in warnings.filters if f[0] == "ignore" and f[2] is not None
            and getattr(f[2], "pattern", "") == _WARNING_MODULES]
    for f in ours:
        warnings.filters.remove(f)
    if not verbose:
        warnings.filterwarnings("ignore", module=_WARNING_MODULES)


def set_verbose(verbose: bool = True) -> None:
    """Show (or hide again) what TensorFlow prints, as ``CVATKIT_VERBOSE`` does."""
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    quiet_tensorflow()


def trainer_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a trainer process: TensorFlow's whole log (at the user's own level, if
    they set one) goes to its ``trainer.log``."""
    out = {**env, VERBOSE_ENV: "1"}
    if _USERS_LEVEL is None:
        out.pop(TF_LOG_ENV, None)
    else:
        out[TF_LOG_ENV] = _USERS_LEVEL
    return out
