"""Model Garden's task and trainer behind the worker's ``Loop`` protocol, and the
distribution strategy a run trains under."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

from ...coco_metrics import COCOevalWithCategories
from ...dataset import VAL_COCO_JSON, Dataset
from ...errors import CvatkitError
from ...runs import CHECKPOINTS, TENSORBOARD, Run, StepEvent
from ..catalog import ModelSpec
from ..devices import CPU_REPLICAS_ENV
from ..multiworker import read_role
from ..record import InitCheckpoint
from ..resolution import Hyperparameters
from .config import build_experiment
from .input_paths import input_pattern
from .precision import set_precision_policy
from .tracing import as_written, input_pipelines_as_written, traced_plainly


def make_strategy(num_clones: int):
    """CPU or one GPU by default; MirroredStrategy over ``num_clones`` devices;
    MultiWorkerMirroredStrategy when TF_CONFIG describes a cluster."""
    import tensorflow as tf

    if read_role() is not None:
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
            raise CvatkitError(f"num-clones={num_clones} but TensorFlow sees "
                               f"{len(devices)} GPU(s)")
        return tf.distribute.MirroredStrategy(devices=devices[:num_clones])
    if devices and not replicas:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.get_strategy()


class ModelGardenLoop:
    """Model Garden's task and ``base_trainer.Trainer`` behind the ``Loop`` protocol."""

    def __init__(self, run: Run, spec: ModelSpec, hp: Hyperparameters, data: Dataset,
                 evald: Dataset | None, init: InitCheckpoint | None) -> None:
        import official.vision  # noqa: F401  (registers tasks and experiments)
        import tensorflow as tf
        from official.core import base_trainer, task_factory

        from . import backbones  # noqa: F401  (registers cvatkit's extra backbones)

        _per_class_coco_metrics()

        self.run, self.spec, self.hp = run, spec, hp
        import tf_keras

        tf_keras.utils.set_random_seed(hp.seed)  # the same initial weights for a seed
        self.strategy = make_strategy(hp.num_clones)
        role = read_role()
        workers = role.workers if role else 1
        eval_source = evald or data
        exp_data = replace(data, val_frames=eval_source.val_frames)
        # Model Garden's task loads starting weights: 'all' from an earlier run, the
        # backbone (and decoder) from published weights or to re-initialise the heads.
        # A published whole detector (and Keras .h5 weights) is loaded here instead.
        start = init if init and not init.path.endswith(".h5") \
            and not _published_detector(init) else None
        self.experiment = build_experiment(
            spec, hp, exp_data, init_checkpoint=start.path if start else None,
            init_modules=start.modules if start else "backbone", workers=workers)
        if evald is not None:
            t = self.experiment.task
            t.validation_data.input_path = input_pattern(evald.path, "val-*.tfrecord")
            t.annotation_file = str(evald.path / VAL_COCO_JSON)
        self.can_evaluate = eval_source.val_frames > 0
        self._eval_steps = self.experiment.trainer.validation_steps
        # as Model Garden's driver does before its task builds the model (an export
        # builds its own in float32: precision.float32_layers)
        set_precision_policy(hp.mixed_precision)
        with self.strategy.scope():
            self.task = task_factory.get_task(self.experiment.task,
                                              logging_dir=str(run.path / TENSORBOARD))
            model = self.task.build_model()
            self._stages = self._plan_stages(data)
            self._stage_gradients = None
            plain = traced_plainly(spec.family)
            if plain:
                self.task.train_step = as_written(self.task.train_step)
                self.task.validation_step = as_written(self.task.validation_step)
            with input_pipelines_as_written() if plain else nullcontext():
                self.trainer = base_trainer.Trainer(  # builds the input pipelines
                    self.experiment, self.task, model=model,
                    optimizer=self._optimizer(model), train=True,
                    evaluate=self.can_evaluate, checkpoint_exporter=None)
        self._init = init
        self.init_report = None
        """What loading a published detector did (``fitting.FitReport``), if one was."""
        self.manager = tf.train.CheckpointManager(
            self.trainer.checkpoint, directory=str(run.path / CHECKPOINTS),
            max_to_keep=max(3, len(self._stages) + 2),
            step_counter=self.trainer.global_step, checkpoint_interval=hp.checkpoint_interval,
            init_fn=self._initialize)
        self.manager.restore_or_initialize()
        self._writer = tf.summary.create_file_writer(str(run.path / TENSORBOARD / "train"))
        self._tf = tf

    def _optimizer(self, model):
        """Model Garden's optimizer; for Mask R-CNN's stages, with the gradient transformer
        that freezes or scales each stage's layers."""
        opt_config = self.experiment.trainer.optimizer_config
        if not self._stages:
            return self.task.create_optimizer(opt_config, self.experiment.runtime)
        from official.modeling import optimization

        from .stages import StageGradients

        self._stage_gradients = StageGradients(model)
        opt_config.optimizer.sgd.global_clipnorm = None  # clipped in the transformer
        factory = optimization.OptimizerFactory(opt_config)
        return factory.build_optimizer(factory.build_learning_rate(),
                                       gradient_transformers=[self._stage_gradients])

    def _initialize(self) -> None:
        """First weights of a fresh run (not called when resuming from a checkpoint)."""
        init = self._init
        if init and init.path.endswith(".h5"):
            self.trainer.model.backbone.load_keras_weights(init.path)
        elif init and _published_detector(init):
            from .fitting import load_fitting

            self.init_report = load_fitting(self.trainer.model, self.experiment.task,
                                            init.path, init.num_classes)
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

    def write(self, prefix: str) -> None:
        self.trainer.checkpoint.write(prefix)

    def latest_checkpoint(self) -> str:
        return self.manager.latest_checkpoint

    def _plan_stages(self, data: Dataset):
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


def _published_detector(init: InitCheckpoint) -> bool:
    """A whole detector from the catalog (COCO-trained), loaded where shapes fit."""
    return init.kind in ("coco", "imagenet") and init.modules == "all"


def _per_class_coco_metrics() -> None:
    """Make Model Garden's COCO evaluator report per-class AP."""
    import types

    from official.vision.evaluation import coco_evaluator

    coco_evaluator.cocoeval = types.SimpleNamespace(COCOeval=COCOevalWithCategories)


def _scalar(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
