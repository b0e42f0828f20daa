"""The best checkpoint of a run, early stopping, and which checkpoint a run exports.

After each evaluation the trainer hands its event to ``BestKeeper.on_evaluation``: an AP
above every earlier one (NaN never is) has the model's checkpoint written to
``checkpoints/best/`` in place of the previous best, with ``best.json`` saying its step and
AP; the folder is written aside and renamed into place, so a resumed run finds the best as
it was. The evaluations since the best are counted: ``early-stopping-patience`` of them in
a row end the training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..files import folder_written_aside
from ..runs import BEST, BEST_JSON, CHECKPOINTS, BestCheckpoint, EvalEvent, Run


class BestKeeper:
    """Keeps a run's best checkpoint and counts the evaluations that did not beat it."""

    def __init__(self, run: Run, *, patience: int = 0, recorded: Run | None = None) -> None:
        """The best as ``recorded`` (by default ``run``, which it writes) recorded it, and
        the evaluations since (a resumed run's events as they count: those past its
        checkpoint are superseded). A worker's private copy of a run keeps the best as the
        chief recorded it, so that both write the same bests."""
        self.run, self.patience = run, patience
        recorded = recorded or run
        self.best = recorded.best_checkpoint()
        evals = [e for e in recorded.events() if isinstance(e, EvalEvent)]
        self.stale = sum(1 for e in evals if self.best is None or e.step > self.best.step)
        """Evaluations in a row that did not beat the best (all of them while there is
        none)."""

    def improves(self, ap: float) -> bool:
        """Whether ``ap`` beats the best so far (NaN never does)."""
        return math.isfinite(ap) and (self.best is None or ap > self.best.ap)

    def on_evaluation(self, event: EvalEvent, write: Callable[[str], None]) -> EvalEvent:
        """``event``, marked ``best`` when its AP beats the best so far: ``write`` (the
        loop's) then writes the model's checkpoint, the new best, at the prefix it is
        given."""
        if not self.improves(event.ap):
            self.stale += 1
            return event
        folder = self.run.path / CHECKPOINTS / BEST
        name = f"ckpt-{event.step}"
        with folder_written_aside(folder) as tmp:
            write(str(tmp / name))
            (tmp / BEST_JSON).write_text(json.dumps(
                {"step": event.step, "ap": event.ap, "checkpoint": name}) + "\n",
                encoding="utf-8")
        self.best = BestCheckpoint(step=event.step, ap=event.ap, checkpoint=str(folder / name))
        self.stale = 0
        return replace(event, best=True)

    def should_stop(self) -> bool:
        """Whether ``patience`` evaluations in a row have not beaten the best."""
        return bool(self.patience) and self.stale >= self.patience

    def reason(self, step: int) -> str:
        """Why the run stopped early at ``step``."""
        n = f"{self.stale} evaluation{'s' if self.stale != 1 else ''}"
        if self.best is None:
            return f"stopped early at step {step}: {n} in a row gave no AP"
        return (f"stopped early at step {step}: AP has not improved on {self.best.ap:.3f} "
                f"(step {self.best.step}) in {n}")


@dataclass(frozen=True, kw_only=True)
class Exported:
    """The checkpoint a run exports, and what its evaluation gave."""

    checkpoint: str
    which: str
    """'best' or 'last'."""
    step: int
    ap: float | None
    """None when that step was not evaluated or gave no AP."""

    def describe(self) -> str:
        """``the best checkpoint (step 400, AP 0.812)``."""
        ap = f"AP {self.ap:.3f}" if self.ap is not None else "no AP"
        return f"the {self.which} checkpoint (step {self.step}, {ap})"

    def about(self) -> dict:
        """What ``export/model.json`` says of it."""
        return {"exported": self.which, "step": self.step, "ap": self.ap}


def choose_export(run: Run, which: str, last: str) -> Exported:
    """The checkpoint ``run`` exports: its best when ``which`` is 'best' and an evaluation
    gave one, else ``last`` (the prefix of its last checkpoint, ``.../ckpt-600``)."""
    best = run.best_checkpoint()
    if which == "best" and best is not None:
        return Exported(checkpoint=best.checkpoint, which="best", step=best.step,
                        ap=best.ap)
    step = _step_of(last)
    evals = [e for e in run.events() if isinstance(e, EvalEvent) and e.step == step]
    ap = evals[-1].ap if evals and math.isfinite(evals[-1].ap) else None
    return Exported(checkpoint=last, which="last", step=step, ap=ap)


def _step_of(prefix: str) -> int:
    """The step a checkpoint prefix names (``ckpt-600`` -> 600)."""
    try:
        return int(prefix.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0
