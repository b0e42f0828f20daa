"""Which task label each model label becomes, shown before anything is written.

Model labels map to task labels by name (exactly, else ignoring case), or as the user
says (``car=vehicle``). A model label with no task label is refused unless the user
asks to drop its predictions; a task with none of the model's labels is always refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..errors import UsageError
from ..records import Shape


@dataclass(frozen=True)
class LabelMatch:
    """Model label -> (task label or None when dropped, how it was matched)."""

    pairs: tuple[tuple[str, str | None, str], ...]
    task: str = "the task"

    def target(self, model_label: str) -> str | None:
        for model, task, _ in self.pairs:
            if model == model_label:
                return task
        return None

    @property
    def targets(self) -> tuple[str, ...]:
        """The task labels predictions can land on, in model-label order, no repeats."""
        return tuple(dict.fromkeys(t for _, t, _ in self.pairs if t is not None))

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(m for m, t, _ in self.pairs if t is None)

    def rename(self, shapes: Iterable[Shape], *, keep_unmapped: bool = False
               ) -> tuple[Shape, ...]:
        """``shapes`` of model labels under their task labels; a shape of an unmapped
        label is left out, or kept under its own name with ``keep_unmapped``."""
        out = []
        for shape in shapes:
            target = self.target(shape.label)
            if target is not None:
                out.append(replace(shape, label=target))
            elif keep_unmapped:
                out.append(shape)
        return tuple(out)

    def format(self) -> str:
        width = max((len(m) for m, _, _ in self.pairs), default=5)
        shown = [(m, t if t else "(dropped)", h) for m, t, h in self.pairs]
        target_width = max((len(t) for _, t, _ in shown), default=5)
        lines = [f"model label -> label of {self.task}"]
        for model, task, how in shown:
            lines.append(f"  {model:<{width}} -> {task:<{target_width}}"
                         f"{f'   ({how})' if how else ''}".rstrip())
        return "\n".join(lines)


def parse_label_pairs(items: Iterable[str] | str | None) -> dict[str, str]:
    """``["car=vehicle", ...]`` or ``"car=vehicle, person=pedestrian"`` as a dict."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [p for p in items.replace("\n", ",").split(",") if p.strip()]
    out: dict[str, str] = {}
    for item in items:
        model, sep, task = item.partition("=")
        if not sep or not model.strip() or not task.strip():
            raise UsageError(f"label mapping {item!r} is not MODEL_LABEL=TASK_LABEL, e.g. "
                             "car=vehicle")
        if model.strip() in out and out[model.strip()] != task.strip():
            raise UsageError(
                f"the label mapping sends {model.strip()!r} twice, to "
                f"{out[model.strip()]!r} and to {task.strip()!r}; keep one of them")
        out[model.strip()] = task.strip()
    return out


def match_labels(model_labels: Sequence[str], task_labels: Sequence[str], *,
               mapping: Mapping[str, str] | None = None, drop_unmapped: bool = False,
               task: str = "the task") -> LabelMatch:
    """Match the model's labels to the task's; see the module's docstring for the rules."""
    mapping = dict(mapping or {})
    for model, target in mapping.items():
        if model not in model_labels:
            raise UsageError(f"the label mapping names {model!r}, which the model does not "
                             f"predict; its labels are: {', '.join(model_labels)}")
        if target not in task_labels:
            raise UsageError(f"the label mapping sends {model!r} to {target!r}, which "
                             f"{task} does not have; its labels are: "
                             f"{', '.join(task_labels) or 'none'}")
    folded: dict[str, list[str]] = {}
    for name in task_labels:
        folded.setdefault(name.casefold(), []).append(name)
    pairs = []
    for model in model_labels:
        if model in mapping:
            pairs.append((model, mapping[model], "your mapping"))
        elif model in task_labels:
            pairs.append((model, model, "same name"))
        elif len(folded.get(model.casefold(), [])) == 1:
            pairs.append((model, folded[model.casefold()][0], "same name, other case"))
        else:
            pairs.append((model, None, ""))
    result = LabelMatch(tuple(pairs), task)
    if not result.targets:
        raise UsageError(
            f"{task} has none of the model's labels (model: {', '.join(model_labels)}; "
            f"task: {', '.join(task_labels) or 'none'}); map them with "
            "--map MODEL_LABEL=TASK_LABEL, or pick a task with those labels")
    if result.dropped and not drop_unmapped:
        raise UsageError(
            f"{task} has no label for the model's {', '.join(map(repr, result.dropped))} "
            f"(task labels: {', '.join(task_labels)}); map each with "
            "--map MODEL_LABEL=TASK_LABEL, or pass --drop-unmapped to leave those "
            "predictions out")
    return result
