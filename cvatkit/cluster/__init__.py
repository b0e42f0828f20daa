"""The cluster stage: cvatkit's training as Kubernetes manifests, a Kubeflow ``TFJob`` for
a planned run folder and an Argo ``Workflow`` for the whole job, with the run folder on a
shared claim and credentials from Secrets."""

from .manifests import dump_manifest
from .options import (ClusterOptions, Toleration, parse_env, parse_node_selector, parse_run_as,
                      parse_secret_env, parse_toleration)
from .tfjob import check_job_name, job_name, render_tfjob
from .workflow import WorkflowJob, render_workflow

__all__ = ["ClusterOptions", "Toleration", "WorkflowJob", "check_job_name", "dump_manifest",
           "job_name", "parse_env", "parse_node_selector", "parse_run_as", "parse_secret_env",
           "parse_toleration",
           "render_tfjob", "render_workflow"]
