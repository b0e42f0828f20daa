"""``cvatkit cluster render tfjob``: a run planned here, queued, and the TFJob that trains
it, checked against the training operator's models and Kubernetes' schemas."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from helpers import MODEL, PLANTED, hyperparameters, run_record
from k8s_schemas import validate_pod_template, validate_tfjob

from cvatkit.cluster import ClusterOptions, render_tfjob
from cvatkit.errors import RunError, UsageError
from cvatkit.runs import Run
from cvatkit.training import InitCheckpoint, Strategy, read_record, write_record

HPARAMS = "num-steps=20;batch-size=4;image-size=128"


@pytest.fixture
def tfjob(cli, prepared, pod_args):
    """``cvatkit cluster render tfjob`` of a short run on the sample dataset."""

    def render(run_dir, *extra):
        return cli("cluster", "render", "tfjob", "--data", prepared.path, "--run-dir",
                   run_dir, "--model", MODEL, "--weights", "none", "--hparams", HPARAMS,
                   *pod_args, *extra)

    return render


def test_a_planned_run_and_its_tfjob(tfjob, claim, pod_args, tmp_path):
    run_dir, out = tmp_path / "runs" / "Run 1", tmp_path / "tfjob.yaml"
    r = tfjob(run_dir, "--workers", 2, "--gpus-per-worker", 2,
               "--node-selector", "nvidia.com/gpu.product=A100", "--node-selector", "pool=gpu",
               "--toleration", "nvidia.com/gpu=present:NoSchedule",
               "--toleration", "spot:NoExecute", "--s3-secret", "team-s3",
               "--cvat-secret", "team-cvat", "--namespace", "ml", "--env", "CVATKIT_VERBOSE=1",
               "--run-as", "1000:100", "--out", out)
    assert r.code == 0, r.err
    assert r.out == ""  # the manifest went to --out, the notes to stderr
    doc = yaml.safe_load(out.read_text())
    validate_tfjob(doc)

    run = Run(run_dir)
    record = read_record(run)
    assert run.status().state == "queued"
    assert record.strategy.planned_workers == 2
    assert doc["metadata"] == {"name": "run-1", "namespace": "ml", "labels": {
        "app.kubernetes.io/name": "cvatkit", "app.kubernetes.io/component": "train"}}
    worker = doc["spec"]["tfReplicaSpecs"]["Worker"]
    assert list(doc["spec"]["tfReplicaSpecs"]) == ["Worker"]  # worker 0 is the chief
    assert (worker["replicas"], worker["restartPolicy"]) == (2, "OnFailure")
    pod = worker["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == pod_args[1]
    assert container["command"] == ["cvatkit", "worker", str(run_dir)]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    assert container["volumeMounts"] == [{"name": "work", "mountPath": str(claim)}]
    assert pod["volumes"] == [{"name": "work", "persistentVolumeClaim": {"claimName": "work"}}]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "A100", "pool": "gpu"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
         "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute"}]
    assert pod["securityContext"] == {"runAsUser": 1000, "runAsGroup": 100}
    # what the pods read lies under the claim's mount, at the paths run.json names
    for path in (run_dir, record.data.path):
        assert claim in Run(path).path.parents
    env = {e["name"]: e for e in container["env"]}
    assert env["CVATKIT_VERBOSE"] == {"name": "CVATKIT_VERBOSE", "value": "1"}
    for name, secret in (("AWS_SECRET_ACCESS_KEY", "team-s3"), ("CVAT_PASSWORD", "team-cvat"),
                         ("CVAT_ACCESS_TOKEN", "team-cvat")):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret
        assert "value" not in env[name]
    written = out.read_text() + "".join(p.read_text() for p in run_dir.iterdir())
    for secret in PLANTED.values():
        assert secret not in written
    assert "kubectl create -f" in r.said


def test_a_cpu_only_tfjob_goes_to_stdout(tfjob, tmp_path):
    run_dir = tmp_path / "cpu-run"
    r = tfjob(run_dir, "--gpus-per-worker", 0)
    assert r.code == 0, r.err
    doc = yaml.safe_load(r.out)
    validate_tfjob(doc)
    (container,) = doc["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    assert "resources" not in container
    assert doc["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 1
    assert read_record(run_dir).hparams.num_clones == 1


def test_the_validators_catch_what_the_schemas_forbid(tfjob, tmp_path):
    """The checks the tests rely on fail on a manifest that is wrong."""
    r = tfjob(tmp_path / "run", "--gpus-per-worker", 0)
    good = yaml.safe_load(r.out)
    validate_tfjob(good)
    unknown = json.loads(json.dumps(good))
    unknown["spec"]["tfReplicaSpecs"]["Worker"]["replica"] = 2  # a typo of replicas
    with pytest.raises(AssertionError, match="replica"):
        validate_tfjob(unknown)
    wrong_type = json.loads(json.dumps(good))
    wrong_type["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "2"
    with pytest.raises(AssertionError, match="replicas"):
        validate_tfjob(wrong_type)
    template = good["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    template["spec"]["containers"][0]["env"][0]["valueFrom"] = {"secretRef": {"name": "x"}}
    with pytest.raises(Exception, match="secretRef"):
        validate_pod_template(template)


# -- mistakes: one case each, said without a traceback, nothing left behind ---------------

def _refused(tfjob, run_dir, *extra, needles):
    r = tfjob(run_dir, *extra)
    assert r.code == 2, r.err
    for needle in needles:
        assert needle in r.said, r.said
    assert r.out == ""
    assert not run_dir.exists()
    return r


def test_a_run_folder_off_the_claim_is_refused(tfjob, tmp_path):
    r = tfjob(tmp_path / "run", "--mount-path", tmp_path / "elsewhere")
    assert r.code == 2
    assert "--run-dir" in r.said and "not under --mount-path" in r.said


def test_evaluation_data_off_the_claim_is_refused(tfjob, prepared, claim, tmp_path):
    """The training data on the claim, the evaluation data not: the pods could not read it."""
    import shutil

    elsewhere = tmp_path.parent.parent / f"{tmp_path.name}-off-the-claim"  # beside the claim
    assert claim not in elsewhere.parents
    shutil.copytree(prepared.path, elsewhere / "eval")
    try:
        _refused(tfjob, tmp_path / "run", "--eval-data", elsewhere / "eval",
                 needles=["--eval-data", "not under --mount-path"])
    finally:
        shutil.rmtree(elsewhere)


def test_data_off_the_claim_is_refused(tfjob, tmp_path):
    mount = tmp_path / "claim"
    r = tfjob(mount / "run", "--mount-path", mount)
    assert r.code == 2
    assert "--data" in r.said and f"not under --mount-path {mount}" in r.said
    assert not (mount / "run").exists()


def test_a_relative_mount_path_is_refused(tfjob, tmp_path):
    _refused(tfjob, tmp_path / "run", "--mount-path", "work",
             needles=["--mount-path 'work' must be an absolute folder"])


def test_a_bad_toleration_is_refused(tfjob, tmp_path):
    _refused(tfjob, tmp_path / "run", "--toleration", "gpu=yes:NoRun",
             needles=["--toleration 'gpu=yes:NoRun'", "NoSchedule"])


def test_a_bad_node_selector_is_refused(tfjob, tmp_path):
    _refused(tfjob, tmp_path / "run", "--node-selector", "pool",
             needles=["--node-selector 'pool'", "key=value"])


def test_a_claim_that_is_no_kubernetes_name_is_refused(tfjob, tmp_path):
    _refused(tfjob, tmp_path / "run", "--claim", "Team_Work",
             needles=["--claim 'Team_Work' is not a Kubernetes name"])


def test_a_credential_as_plain_env_is_refused(tfjob, tmp_path):
    r = _refused(tfjob, tmp_path / "run", "--env", "AWS_SECRET_ACCESS_KEY=abc123",
                 needles=["--env AWS_SECRET_ACCESS_KEY", "--s3-secret"])
    assert "abc123" not in r.err


@pytest.mark.parametrize("setting", [
    "DB_PASSWORD=abc123", "DB_PASS=abc123", "SMTP_PWD=abc123", "GITHUB_TOKEN=abc123",
    "WANDB_API_KEY=abc123", "OPENAI_KEY=abc123", "PRIVATE_KEY=abc123", "HF_AUTH=abc123",
    "SENTRY_DSN=abc123", "BASIC_AUTH_USER=abc123", "SERVICE_CREDENTIALS=abc123",
    "MLFLOW_TRACKING_URI=https://me:abc123@mlflow.example.com"])
def test_anything_that_looks_like_a_credential_is_refused_with_the_way_to_pass_it(
        setting, tfjob, tmp_path):
    name = setting.split("=")[0]
    r = _refused(tfjob, tmp_path / "run", "--env", setting,
                 needles=[f"--env {name}", f"--secret-env {name}=SECRET:KEY"])
    assert "abc123" not in r.err


def test_a_secret_env_comes_from_its_secret_by_reference(tfjob, tmp_path):
    out = tmp_path / "tfjob.yaml"
    r = tfjob(tmp_path / "run", "--env", "PWD_HINT_FOR_TESTS=1", "--secret-env",
              "WANDB_API_KEY=team-extra:wandb.key", "--out", out)
    assert r.code == 0, r.err
    doc = yaml.safe_load(out.read_text())
    validate_tfjob(doc)
    (container,) = doc["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    assert {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "team-extra", "key": "wandb.key"}}} in container["env"]
    for bad, needle in (("WANDB_API_KEY", "NAME=SECRET:KEY"),
                        ("WANDB_API_KEY=Team_Extra:k", "'Team_Extra' is not a Kubernetes name"),
                        ("WANDB_API_KEY=team:k/1", "is not a key a Secret can hold")):
        _refused(tfjob, tmp_path / "refused", "--secret-env", bad, needles=[needle])


def test_no_workers_is_refused(tfjob, tmp_path):
    _refused(tfjob, tmp_path / "run", "--workers", 0, needles=["--workers 0"])


def test_a_bad_job_name_is_refused(tfjob, tmp_path):
    _refused(tfjob, tmp_path / "run", "--name", "Run_1",
             needles=["--name 'Run_1'", "lower-case"])


def test_an_unwritable_out_leaves_no_queued_run(tfjob, tmp_path):
    _refused(tfjob, tmp_path / "run", "--out", tmp_path,
             needles=[f"{tmp_path} is a folder"])


def test_a_run_folder_holding_a_run_is_refused(tfjob, tmp_path):
    run_dir = tmp_path / "run"
    assert tfjob(run_dir, "--out", tmp_path / "a.yaml").code == 0
    r = tfjob(run_dir, "--out", tmp_path / "b.yaml")
    assert r.code == 2 and "already holds a run" in r.said
    assert not (tmp_path / "b.yaml").exists()


# -- the library: a run folder written by hand ----------------------------------------------

def _hand_written_run(run_dir, data, **fields):
    """A run of 10 steps on ``data`` planned for 2 workers, with the record's ``fields``."""
    record = run_record(num_steps=10)
    run_dir.mkdir(parents=True)
    write_record(run_dir, replace(record, data=replace(record.data, path=Path(data)),
                                  strategy=Strategy(num_clones=1, planned_workers=2), **fields))
    return run_dir


def _options(claim):
    return ClusterOptions(image="cvatkit:test", claim="work", mount_path=str(claim))


def test_published_weights_off_the_claim_name_the_cache(claim, prepared, tmp_path):
    run_dir = _hand_written_run(tmp_path / "run", prepared.path, weights="coco",
                                init=InitCheckpoint(
                                    path="/root/.cache/cvatkit/weights/retinanet/ckpt-1",
                                    kind="coco"))
    with pytest.raises(UsageError, match=r"starting checkpoint.*CVATKIT_CACHE"):
        render_tfjob(run_dir, _options(claim), workers=2, gpus_per_worker=1)


def test_workers_other_than_planned_are_refused(claim, prepared, tmp_path):
    run_dir = _hand_written_run(tmp_path / "run", prepared.path)
    with pytest.raises(UsageError, match="planned for 2 workers, not --workers 3"):
        render_tfjob(run_dir, _options(claim), workers=3, gpus_per_worker=1)
    validate_tfjob(render_tfjob(run_dir, _options(claim), workers=2, gpus_per_worker=1))


def test_more_clones_than_gpus_are_refused(claim, prepared, tmp_path):
    run_dir = _hand_written_run(tmp_path / "run", prepared.path,
                                hparams=replace(hyperparameters(num_steps=10), num_clones=4))
    with pytest.raises(UsageError, match="num-clones=4 .* --gpus-per-worker 4"):
        render_tfjob(run_dir, _options(claim), workers=2, gpus_per_worker=2)


def test_a_completed_run_is_refused(claim, prepared, tmp_path):
    run_dir = _hand_written_run(tmp_path / "run", prepared.path)
    Run(run_dir).set_status("completed", step=10, total_steps=10)
    with pytest.raises(RunError, match="has completed"):
        render_tfjob(run_dir, _options(claim), workers=2, gpus_per_worker=1)


# -- the TFJob's command, run here as the operator would run it ---------------------------

@pytest.mark.slow  # trains
def test_the_tfjobs_command_trains_as_two_workers(tfjob, tmp_path):
    """Each worker pod's container command, run as a process of its own with the
    TF_CONFIG the training operator gives worker i (its cluster: every worker's address;
    here 127.0.0.1 ports for the pods' service names), the plain env entries of the
    container, and nothing of the secrets: the run completes, written by worker 0."""
    import os
    import subprocess
    import sys

    from cvatkit.training.multiworker import local_cluster

    run_dir = tmp_path / "run"
    r = tfjob(run_dir, "--workers", 2, "--gpus-per-worker", 0, "--env", "CVATKIT_VERBOSE=1")
    assert r.code == 0, r.err
    doc = yaml.safe_load(r.out)
    worker = doc["spec"]["tfReplicaSpecs"]["Worker"]
    (container,) = worker["template"]["spec"]["containers"]
    command = container["command"] + container.get("args", [])
    assert command[0] == "cvatkit"
    exe = [sys.executable, "-c", "import sys; from cvatkit.cli import main; "
           "sys.exit(main(sys.argv[1:]))"]  # the image's entry point, in this venv
    plain = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    procs = []
    for index, config in enumerate(local_cluster(worker["replicas"])):
        env = {k: v for k, v in os.environ.items() if k not in PLANTED}
        env.update(plain, TF_CONFIG=config)
        with open(tmp_path / f"pod-{index}.log", "wb") as log:
            procs.append(subprocess.Popen(exe + command[1:], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=tmp_path))
    codes = [p.wait(timeout=900) for p in procs]
    logs = [(tmp_path / f"pod-{i}.log").read_text()[-2000:] for i in range(2)]
    assert codes == [0, 0], logs
    run = Run(run_dir)
    assert run.status().state == "completed" and run.status().step == 20
    assert read_record(run).strategy.replicas == 2
    assert (run_dir / "export" / "saved_model" / "saved_model.pb").is_file()
    assert "worker 1 of 2 ended completed at step 20" in logs[1]
    # a pod restarted after the end (restartPolicy OnFailure) does nothing more
    again = subprocess.run(exe + command[1:], env={**env, "TF_CONFIG": ""}, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "has completed; nothing to do" in again.stderr
