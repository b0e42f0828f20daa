"""The training stage: the model catalog, hyperparameters, initial weights, planning and
launching runs, and the trainer process (on TF Model Garden)."""

from .catalog import (BUILT_IN, DEFAULT_MODEL, FAMILIES, MODEL_ALIASES, WEIGHT_KINDS, ModelSpec,
                      Weights, get_model, load_catalog)
from .costs import PhaseCosts, describe_costs
from .devices import count_gpus
from .following import follow_run, run_summary
from .hparams import (BY_KEY, PARAMS, Param, canonical_key, convert, format_hparams, format_value,
                      hparams_given, line_values, parse_hparams, read_hparams_file, set_line)
from .launcher import check_run_dir, resume_run, start_run, stop_run
from .plan import RunPlan, check_request, check_start, plan_run, resolve_init_checkpoint
from .record import (FORMAT, FitReport, InitCheckpoint, RunRecord, Strategy, read_record,
                     update_record, write_record)
from .resolution import Hyperparameters, default_value, recommended_steps, resolve
from .weights import fetch_weights

__all__ = ["BUILT_IN", "BY_KEY", "DEFAULT_MODEL", "FAMILIES", "FORMAT", "FitReport",
           "Hyperparameters", "InitCheckpoint", "MODEL_ALIASES", "ModelSpec", "PARAMS", "Param",
           "PhaseCosts", "RunPlan", "RunRecord", "Strategy", "WEIGHT_KINDS", "Weights",
           "canonical_key", "check_request", "check_run_dir", "check_start", "convert",
           "count_gpus", "default_value", "describe_costs", "fetch_weights", "follow_run",
           "format_hparams", "format_value", "get_model", "hparams_given", "line_values",
           "load_catalog", "parse_hparams", "plan_run", "read_hparams_file", "read_record",
           "recommended_steps", "resolve", "resolve_init_checkpoint", "resume_run",
           "run_summary", "set_line", "start_run", "stop_run", "update_record", "write_record"]
