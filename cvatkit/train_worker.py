"""The trainer process: Model Garden's task and trainer, driven step by step, with events.

It builds the model, inputs, losses and metrics through Model Garden's task API and runs
its ``tf.function``-compiled training loop ``log-interval`` steps per call. Between calls
it writes events, checkpoints, evaluations and TensorBoard summaries, and watches for a
stop request (SIGTERM) and for a loss that is no longer finite.
"""

from __future__ import annotations

import math
import os
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .catalog import ModelSpec, Weights
from .hparams import Hyperparameters
from .mg_config import DataInfo, build_experiment
from .runs import CHECKPOINTS, EXPORT, TENSORBOARD, EvalEvent, Run, StatusEvent, StepEvent

_stop_requested = False


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    global _stop_requested
    _stop_requested = True


def main(run_dir: str, *, resume: bool = False) -> int:
    """Train the run in ``run_dir``; the exit code says whether it completed or stopped."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigterm)
    run = Run(run_dir)
    try:
        spec = run.spec()
        state = _train(run, spec, resume=resume)
        return 0 if state in ("completed", "stopped") else 1
    except BaseException as e:  # noqa: BLE001  (the run must say it failed, whatever it was)
        traceback.print_exc()
        message = _failure_message(e)
        step = run.status().step
        run.append(StatusEvent(step=step, time=time.time(), state="failed", message=message))
        run.set_status("failed", step=step, error=message,
                       total_steps=run.status().total_steps)
        return 1


def _failure_message(e: BaseException) -> str:
    from .errors import CvatkitError

    if isinstance(e, CvatkitError):
        return str(e)
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    if "OOM" in str(e) or isinstance(e, MemoryError):
        return ("ran out of memory; lower batch-size or image-size" +
                (f" ({first})" if first else ""))
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


class Loop(Protocol):
    """What the step loop needs from a trainer (Model Garden's, or a fake in tests)."""

    def train(self, steps: int) -> dict[str, float]: ...
    def evaluate(self) -> dict[str, float]: ...
    def step(self) -> int: ...
    def save(self, step: int, *, force: bool) -> None: ...


@dataclass
class Outcome:
    state: str
    step: int
    message: str = ""


def run_loop(loop: Loop, run: Run, hp: Hyperparameters, *, labels: tuple[str, ...],
             total_steps: int, can_evaluate: bool, stop=lambda: _stop_requested,
             summaries=None, stage: int = 0, stage_end: int | None = None) -> Outcome:
    """Train until ``stage_end`` (or the end), logging, checkpointing and evaluating."""
    end = total_steps if stage_end is None else stage_end
    step = loop.step()
    while step < end:
        if stop():
            loop.save(step, force=True)
            return Outcome("stopped", step)
        n = min(hp.log_interval - step % hp.log_interval, end - step)
        t0 = time.perf_counter()
        logs = loop.train(n)
        seconds = max(time.perf_counter() - t0, 1e-9)
        step = loop.step()
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        if bad:
            what = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
            return Outcome("failed", step,
                           f"the loss is no longer finite at step {step} ({what}): training "
                           f"diverged; lower initial-learning-rate (now "
                           f"{hp.initial_learning_rate:g}) or check the annotations. The "
                           "last checkpoint before it is kept")
        losses = {k: v for k, v in logs.items()
                  if k.endswith("loss") and k not in ("total_loss", "training_loss")}
        event = StepEvent(step=step, time=time.time(), losses=losses,
                          total_loss=logs.get("total_loss", logs.get("training_loss", 0.0)),
                          learning_rate=logs.get("learning_rate", 0.0),
                          examples_per_sec=n * hp.batch_size / seconds,
                          steps_per_sec=n / seconds, stage=stage)
        run.append(event)
        if summaries is not None:
            summaries(event)
        run.set_status("running", step=step, total_steps=total_steps)
        loop.save(step, force=False)
        if (can_evaluate and hp.eval_interval and step % hp.eval_interval == 0
                and step < total_steps):
            run.append(eval_event(loop.evaluate(), step, labels))
    return Outcome("running", step)


def eval_event(logs: dict[str, float], step: int, labels: tuple[str, ...],
               split: str = "val") -> EvalEvent:
    per_class = {name: float(logs.get(f"Precision mAP ByCategory/{name}", float("nan")))
                 for name in labels}
    keep = {k: float(v) for k, v in logs.items() if "ByCategory" not in k}
    return EvalEvent(step=step, time=time.time(), ap=float(logs.get("AP", float("nan"))),
                     ap50=float(logs.get("AP50", float("nan"))), per_class=per_class,
                     metrics=keep, split=split)


# -- the real thing --------------------------------------------------------------------------


def _train(run: Run, spec_json: dict[str, Any], *, resume: bool) -> str:
    model_fields = dict(spec_json["model"])
    if model_fields.get("weights"):
        w = dict(model_fields["weights"])
        w["urls"] = tuple(w.get("urls", ()))
        model_fields["weights"] = Weights(**w)
    spec = ModelSpec(**model_fields)
    hp = Hyperparameters(**{k.replace("-", "_"): v for k, v in spec_json["hparams"].items()})
    data = _data_info(spec_json["data"])
    evald = _data_info(spec_json["eval_data"]) if spec_json.get("eval_data") else None
    init = spec_json.get("init") or None
    labels = tuple(spec_json["labels"])

    run.set_status("starting", step=run.status().step, total_steps=hp.num_steps)
    mg = _ModelGardenLoop(run, spec, hp, data, evald, init)
    step = mg.step()
    replicas = mg.strategy.num_replicas_in_sync
    where = (f"on {replicas} replicas ({type(mg.strategy).__name__})" if replicas > 1
             else "on one device")
    run.append(StatusEvent(step=step, time=time.time(), state="running",
                           message=f"resumed at step {step}" if resume and step
                           else f"started {where}"))
    run.set_status("running", step=step, total_steps=hp.num_steps)

    outcome = Outcome("running", step)
    for stage, stage_end in mg.stages():
        if stage_end <= mg.step():
            continue
        mg.enter_stage(stage)
        outcome = run_loop(mg, run, hp, labels=labels, total_steps=hp.num_steps,
                           can_evaluate=mg.can_evaluate, summaries=mg.summaries, stage=stage,
                           stage_end=stage_end)
        if outcome.state != "running":
            break
    if outcome.state in ("stopped", "failed"):
        run.append(StatusEvent(step=outcome.step, time=time.time(), state=outcome.state,
                               message=outcome.message or "stopped on request; resume with "
                               f"`cvatkit train --resume {run.path}`"))
        run.set_status(outcome.state, step=outcome.step, error=outcome.message,
                       total_steps=hp.num_steps)
        return outcome.state

    mg.save(outcome.step, force=True)
    if mg.can_evaluate:
        run.append(eval_event(mg.evaluate(), outcome.step, labels,
                              split="test" if evald else "val"))
    run.set_status("running", step=outcome.step, total_steps=hp.num_steps)
    from .export import export_run

    export_run(run, mg.experiment, mg.latest_checkpoint(), labels)
    run.append(StatusEvent(step=outcome.step, time=time.time(), state="completed",
                           message=f"exported to {run.path / EXPORT}"))
    run.set_status("completed", step=outcome.step, total_steps=hp.num_steps)
    return "completed"


def _data_info(obj: dict[str, Any]) -> DataInfo:
    obj = dict(obj)
    obj["path"] = Path(obj["path"])
    obj["labels"] = tuple(obj["labels"])
    return DataInfo(**obj)


def make_strategy(num_clones: int):
    """CPU or one GPU by default; MirroredStrategy over ``num_clones`` devices;
    MultiWorkerMirroredStrategy when TF_CONFIG describes a cluster."""
    import tensorflow as tf

    from .trainer import CPU_REPLICAS_ENV

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    replicas = int(os.environ.get(CPU_REPLICAS_ENV, "0") or 0)
    if replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    else:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if num_clones > 1:
        if len(devices) < num_clones:
            from .errors import CvatkitError

            raise CvatkitError(f"num-clones={num_clones} but TensorFlow sees "
                               f"{len(devices)} GPU(s)")
        return tf.distribute.MirroredStrategy(devices=devices[:num_clones])
    if devices and not replicas:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.get_strategy()


class _ModelGardenLoop:
    """Model Garden's task and ``base_trainer.Trainer`` behind the ``Loop`` protocol."""

    def __init__(self, run: Run, spec: ModelSpec, hp: Hyperparameters, data: DataInfo,
                 evald: DataInfo | None, init: dict[str, Any] | None) -> None:
        import tensorflow as tf
        from official.core import base_trainer, task_factory

        import official.vision  # noqa: F401  (registers tasks and experiments)

        from . import backbones  # noqa: F401  (registers cvatkit's extra backbones)
        from .coco_metrics import enable_in_model_garden

        enable_in_model_garden()

        self.run, self.spec, self.hp = run, spec, hp
        self.strategy = make_strategy(hp.num_clones)
        eval_source = evald or data
        exp_data = DataInfo(path=data.path, labels=data.labels,
                            train_frames=data.train_frames,
                            val_frames=eval_source.val_frames,
                            include_masks=data.include_masks,
                            val_fraction=data.val_fraction)
        # Model Garden's task loads starting weights: 'all' from an earlier run, the
        # backbone (and decoder) from published weights or to re-initialise the heads.
        start = init if init and not init["path"].endswith(".h5") else None
        self.experiment = build_experiment(
            spec, hp, exp_data, init_checkpoint=start["path"] if start else None,
            init_modules=start["modules"] if start else "backbone")
        if evald is not None:
            t = self.experiment.task
            t.validation_data.input_path = str(evald.path / "val-*.tfrecord")
            t.annotation_file = str(evald.path / "val_coco.json")
        self.can_evaluate = eval_source.val_frames > 0
        self._eval_steps = self.experiment.trainer.validation_steps
        with self.strategy.scope():
            self.task = task_factory.get_task(self.experiment.task,
                                              logging_dir=str(run.path / TENSORBOARD))
            model = self.task.build_model()
            self._stages = self._plan_stages(data)
            self._stage_gradients = None
            if self._stages:
                from official.modeling import optimization

                from .stages import StageGradients

                self._stage_gradients = StageGradients(model)
                opt_config = self.experiment.trainer.optimizer_config
                opt_config.optimizer.sgd.global_clipnorm = None  # clipped in the transformer
                factory = optimization.OptimizerFactory(opt_config)
                optimizer = factory.build_optimizer(
                    factory.build_learning_rate(),
                    gradient_transformers=[self._stage_gradients])
            else:
                optimizer = self.task.create_optimizer(
                    self.experiment.trainer.optimizer_config, self.experiment.runtime)
            self.trainer = base_trainer.Trainer(
                self.experiment, self.task, model=model, optimizer=optimizer, train=True,
                evaluate=self.can_evaluate, checkpoint_exporter=None)
        self._init = init
        self.manager = tf.train.CheckpointManager(
            self.trainer.checkpoint, directory=str(run.path / CHECKPOINTS),
            max_to_keep=max(3, len(self._stages) + 2),
            step_counter=self.trainer.global_step, checkpoint_interval=hp.checkpoint_interval,
            init_fn=self._initialize)
        self.manager.restore_or_initialize()
        self._writer = tf.summary.create_file_writer(str(run.path / TENSORBOARD / "train"))
        self._tf = tf

    def _initialize(self) -> None:
        """First weights of a fresh run (not called when resuming from a checkpoint)."""
        init = self._init
        if init and init["path"].endswith(".h5"):
            self.trainer.model.backbone.load_keras_weights(init["path"])
        else:
            self.trainer.initialize()

    # Loop protocol
    def train(self, steps: int) -> dict[str, float]:
        tf = self._tf
        logs = self.trainer.train(tf.convert_to_tensor(steps, dtype=tf.int32))
        return {k: float(v) for k, v in (logs or {}).items() if _scalar(v)}

    def evaluate(self) -> dict[str, float]:
        tf = self._tf
        logs = self.trainer.evaluate(tf.convert_to_tensor(self._eval_steps, dtype=tf.int32))
        return {k: float(v) for k, v in (logs or {}).items() if _scalar(v)}

    def step(self) -> int:
        return int(self.trainer.global_step.numpy())

    def save(self, step: int, *, force: bool) -> None:
        self.manager.save(checkpoint_number=step, check_interval=not force)

    def latest_checkpoint(self) -> str:
        return self.manager.latest_checkpoint

    def _plan_stages(self, data: DataInfo):
        from .stages import plan_stages

        hp = self.hp
        epochs = (hp.stage_1_epochs, hp.stage_2_epochs, hp.stage_3_epochs)
        if self.spec.family != "maskrcnn" or not any(epochs):
            return []
        return plan_stages(epochs, data.train_frames, hp.batch_size)

    def stages(self) -> list[tuple[int, int]]:
        if not self._stages:
            return [(0, self.hp.num_steps)]
        return [(s.number, s.end_step) for s in self._stages]

    def enter_stage(self, stage: int) -> None:
        """Set the stage; a checkpoint marks where each stage begins."""
        if self._stage_gradients is None:
            return
        self._stage_gradients.stage.assign(stage)
        self.save(self.step(), force=True)

    def summaries(self, event: StepEvent) -> None:
        tf = self._tf
        with self._writer.as_default(step=event.step):
            for k, v in event.losses.items():
                tf.summary.scalar(f"loss/{k}", v)
            tf.summary.scalar("loss/total_loss", event.total_loss)
            tf.summary.scalar("learning_rate", event.learning_rate)
            tf.summary.scalar("examples_per_sec", event.examples_per_sec)
        self._writer.flush()


def _scalar(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
