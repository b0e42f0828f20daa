"""A task's jobs on a CVAT server: which frames each holds and how far its work has come,
and the filter that picks the frames a run trains on.

CVAT splits a task into jobs, each with a stage (annotation, validation, acceptance) and
a state (new, in progress, rejected, completed). A frame in a job nobody has finished may
hold objects nobody drew yet, and training on it teaches the model they are background.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import UsageError
from ..frame_choices import ALL, AUTO, FINISHED, STAGES, STATES

@dataclass(frozen=True)
class Job:
    """One annotation job of a task: its frames (task frame numbers) and its progress."""

    id: int
    stage: str
    state: str
    start: int
    stop: int
    """The job's last frame (inclusive), as CVAT gives it."""

    @property
    def finished(self) -> bool:
        """Annotated and handed on: completed, or in review and not sent back."""
        return self.state == "completed" or (
            self.stage in ("validation", "acceptance") and self.state != "rejected")

    def holds(self, frame: int) -> bool:
        return self.start <= frame <= self.stop


def parse_jobs(text: str | None) -> tuple[str, ...]:
    """The words of a ``--jobs`` value, checked: ``auto``, ``all``, ``finished`` or stages
    and states (``in_progress`` and ``in-progress`` name the state ``in progress``)."""
    value = (text or AUTO).strip().lower()
    if value in (AUTO, ALL, FINISHED):
        return (value,)
    words = tuple(w.strip().replace("_", " ").replace("-", " ") for w in value.split(","))
    unknown = [w for w in words if w not in STATES + STAGES]
    if not words or unknown:
        raise UsageError(
            f"--jobs {text!r}: {', '.join(repr(w) for w in unknown) or 'nothing'} is not a "
            f"job stage or state; give auto, all, finished, or stages ({', '.join(STAGES)}) "
            f"and states ({', '.join(STATES)}) separated by commas, e.g. --jobs completed")
    return words


def job_from_cvat(job) -> Job | None:
    """A Job from a ``models.JobRead``; None for ground-truth jobs, whose frames also
    belong to the task's annotation jobs."""
    if str(getattr(job.type, "value", job.type) or "annotation") == "ground_truth":
        return None
    return Job(id=int(job.id), stage=str(getattr(job.stage, "value", job.stage)),
               state=str(getattr(job.state, "value", job.state)),
               start=int(job.start_frame), stop=int(job.stop_frame))


@dataclass(frozen=True)
class JobChoice:
    """The jobs a task's frames are taken from, and what that left out."""

    taken: tuple[Job, ...]
    jobs: tuple[Job, ...]
    note: str = ""
    """Said when the choice was not the one asked for (``auto`` with nothing finished)."""

    def takes(self, frame: int) -> bool:
        """Whether ``frame`` lies in a job taken (a frame in no job is taken)."""
        owners = [j for j in self.jobs if j.holds(frame)]
        return not owners or any(j in self.taken for j in owners)

    def state_of(self, frame: int) -> str:
        """The state of the job that holds ``frame`` (``no job`` when none does)."""
        owner = next((j for j in self.jobs if j.holds(frame)), None)
        return owner.state if owner else "no job"


def choose_jobs(jobs: Iterable[Job], words: tuple[str, ...], where: str) -> JobChoice:
    """The jobs ``words`` (from ``parse_jobs``) take out of ``jobs``; ``where`` names the
    task in the note."""
    jobs = tuple(jobs)
    if words == (ALL,):
        return JobChoice(taken=jobs, jobs=jobs)
    finished = tuple(j for j in jobs if j.finished)
    if words == (AUTO,):
        if finished or not jobs:
            return JobChoice(taken=finished, jobs=jobs)
        states = Counter(j.state for j in jobs)
        return JobChoice(taken=jobs, jobs=jobs, note=(
            f"{where}: none of its {len(jobs)} jobs is finished ("
            + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            + "), so all its frames are taken; unfinished frames may hold objects nobody "
            "drew yet. Mark finished jobs completed in CVAT, or give --jobs all to say "
            "every frame is done"))
    if words == (FINISHED,):
        return JobChoice(taken=finished, jobs=jobs)
    return JobChoice(taken=tuple(j for j in jobs if j.stage in words or j.state in words),
                     jobs=jobs)
