"""The words that choose a CVAT task's frames: by the state of their jobs (what a run
trains on, ``--jobs``) and by what is on them (what pre-annotation writes on,
``--frames``). Plain words and help texts, so that the command line's help costs no
import of the stages."""

from __future__ import annotations

STATES = ("new", "in progress", "rejected", "completed")
STAGES = ("annotation", "validation", "acceptance")
AUTO, ALL, FINISHED = "auto", "all", "finished"
JOB_CHOICES = (AUTO, FINISHED, ALL)
"""The one-word values of ``--jobs`` (it also takes lists of stages and states)."""
JOBS_HELP = (
    "which jobs' frames to train on: 'auto' (the default: the frames of finished jobs, "
    "i.e. state completed, or stage validation or acceptance and not rejected; a task "
    "none of whose jobs is finished gives all its frames, and the report says so), "
    "'finished' (finished jobs only, even when that is none), 'all', or a comma list of "
    f"stages ({', '.join(STAGES)}) and states ({', '.join(STATES)}): a job is taken when "
    "its stage or its state is listed. Exports carry no job states: with an export only "
    "'auto' and 'all' apply")

UNANNOTATED, NEW_JOBS, ALL_FRAMES = "unannotated", "new-jobs", "all"
FRAME_CHOICES = (UNANNOTATED, NEW_JOBS, ALL_FRAMES)
"""The frames pre-annotation writes on (``cvatkit annotate --frames``)."""
FRAMES_HELP = (
    "which frames get predictions: 'unannotated' (the default: frames without shapes; "
    "frames people annotated are left as they are), 'new-jobs' (frames without shapes in "
    "jobs whose state is new, i.e. nobody has opened them; on a server only), 'all' "
    "(every frame, adding to what is there; what --clear-existing implies)")
