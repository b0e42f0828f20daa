"""``cvatkit cluster render workflow``: the whole job as an Argo Workflow, checked by hera's
models and Kubernetes' schemas."""

from __future__ import annotations

import ast
import copy
import json

import pytest
import yaml
from helpers import PLANTED, ROOT
from k8s_schemas import validate_workflow

from cvatkit.cli import main

ALL = ["--task", 12, "--model", "ssd-mobilenet-v2", "--weights", "imagenet",
       "--hparams", "num-steps=2000;batch-size=16", "--store", "s3://models/team",
       "--store-namespace", "team", "--create-bucket", "--eval-task", 13,
       "--annotate-task", 14, "--gpus", 2, "--s3-secret", "team-s3",
       "--cvat-secret", "team-cvat", "--namespace", "ml", "--service-account", "argo-runner",
       "--node-selector", "pool=gpu", "--toleration", "nvidia.com/gpu:NoSchedule",
       "--run-as", "1000:100"]


@pytest.fixture
def workflow(cli, pod_args):
    def render(*args):
        return cli("cluster", "render", "workflow", *pod_args, *args)

    return render


def _notebook_parameters() -> set[str]:
    """The names set in train.ipynb's parameters cell."""
    cells = json.loads((ROOT / "notebooks" / "train.ipynb").read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}


def test_the_whole_job_as_a_workflow(workflow, claim, pod_args, tmp_path):
    out = tmp_path / "workflow.yaml"
    workdir = claim / "team-work"
    r = workflow(*ALL, "--workdir", workdir, "--out", out)
    assert r.code == 0, r.err
    assert "argo submit" in r.said
    text = out.read_text()
    doc = yaml.safe_load(text)
    validate_workflow(doc)

    spec = doc["spec"]
    assert doc["metadata"]["generateName"] == "cvatkit-train-"
    assert doc["metadata"]["namespace"] == "ml"
    params = {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}
    assert params == {"task-id": "12", "model": "ssd-mobilenet-v2", "weights": "imagenet",
                      "hparams": "num-steps=2000\nbatch-size=16", "val-split": "0.1",
                      "jobs": "auto",
                      "eval-task-id": "13", "store": "s3://models/team",
                      "store-namespace": "team", "annotate-task-id": "14"}
    # the notebook's parameters, under the workflow's names (interactive has no meaning here;
    # workdir and create_bucket are fixed when rendering, run_name is the workflow's name)
    carried = {"source": "task-id", "task_id": "task-id", "model": "model",
               "weights": "weights", "hparams": "hparams", "hparams_file": "hparams",
               "store": "store", "store_namespace": "store-namespace",
               "namespace": "store-namespace", "jobs": "jobs"}
    assert set(carried) | {"interactive", "workdir", "create_bucket", "run_name"} \
        == _notebook_parameters()
    assert set(carried.values()) <= set(params)

    (main,) = [t for t in spec["templates"] if "steps" in t]
    assert [s[0]["name"] for s in main["steps"]] == [
        "prepare", "train", "evaluate", "publish", "annotate"]
    containers = {t["name"]: t["container"] for t in spec["templates"] if "container" in t}
    run = f"{workdir}/runs/{{{{workflow.name}}}}"
    data = f"{workdir}/datasets/{{{{workflow.name}}}}"
    assert containers["prepare"]["args"][:3] == [
        "prepare", "cvat://{{workflow.parameters.task-id}}", data]
    assert containers["prepare"]["args"][-2:] == ["--jobs", "{{workflow.parameters.jobs}}"]
    assert containers["train"]["args"][:5] == ["train", "--data", data, "--run-dir", run]
    assert containers["evaluate"]["args"][:3] == [
        "evaluate", run, "cvat://{{workflow.parameters.eval-task-id}}"]
    assert containers["publish"]["args"] == [
        "publish", run, "--store", "{{workflow.parameters.store}}", "--store-namespace",
        "{{workflow.parameters.store-namespace}}", "--create-bucket"]
    assert containers["annotate"]["args"] == [
        "annotate", run, "--task", "{{workflow.parameters.annotate-task-id}}"]
    for name, container in containers.items():
        assert container["image"] == pod_args[1]
        assert container["command"] == ["cvatkit"]
        assert container["volumeMounts"] == [{"name": "work", "mountPath": str(claim)}]
        secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
                   if "valueFrom" in e}
        assert secrets == ({"team-s3"} if name in ("train", "publish") else {"team-cvat"})
        assert all("value" not in e for e in container["env"] if "valueFrom" in e)
    assert containers["train"]["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    assert "resources" not in containers["prepare"]
    assert spec["volumes"] == [{"name": "work", "persistentVolumeClaim": {"claimName": "work"}}]
    assert spec["serviceAccountName"] == "argo-runner"
    assert spec["nodeSelector"] == {"pool": "gpu"}
    for secret in PLANTED.values():
        assert secret not in text


def test_without_annotate_task_there_are_four_steps(workflow, claim, tmp_path):
    r = workflow("--task", 7, "--store", "s3://models/team", "--s3-secret", "s3",
                 "--cvat-secret", "cvat", "--run-name", "nightly-7")
    assert r.code == 0, r.err
    doc = yaml.safe_load(r.out)
    validate_workflow(doc)
    assert doc["metadata"]["name"] == "nightly-7"
    (main,) = [t for t in doc["spec"]["templates"] if "steps" in t]
    assert [s[0]["name"] for s in main["steps"]] == ["prepare", "train", "evaluate", "publish"]
    params = {p["name"]: p["value"] for p in doc["spec"]["arguments"]["parameters"]}
    assert params["model"] == "retinanet-spinenet-mobile-coco"  # the default, by its key
    assert params["eval-task-id"] == "7"
    train = next(t for t in doc["spec"]["templates"] if t["name"] == "train")
    assert f"{claim}/cvatkit-work/runs/{{{{workflow.name}}}}" in train["container"]["args"]


def test_the_validator_catches_what_argo_forbids(workflow, tmp_path):
    r = workflow("--task", 7, "--store", "s3://models/team", "--s3-secret", "s3",
                 "--cvat-secret", "cvat")
    good = yaml.safe_load(r.out)
    unknown = copy.deepcopy(good)
    unknown["spec"]["entrypoints"] = "main"  # a typo of entrypoint
    with pytest.raises(AssertionError, match="entrypoints"):
        validate_workflow(unknown)
    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["parallelism"] = "many"
    with pytest.raises(Exception, match="parallelism"):
        validate_workflow(wrong_type)
    bad_container = copy.deepcopy(good)
    bad_container["spec"]["templates"][0]["container"]["volumeMounts"][0]["mountPath"] = 3
    with pytest.raises(Exception, match="mountPath"):
        validate_workflow(bad_container)


# -- mistakes: one case each ------------------------------------------------------------------

def _refused(r, *needles):
    assert r.code == 2, r.err
    assert r.out == ""
    for needle in needles:
        assert needle in r.said, r.said


def test_no_cvat_secret_is_refused(workflow):
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--s3-secret", "s3"),
             "--cvat-secret NAME", "CVAT_HOST")


def test_an_s3_store_without_its_secret_is_refused(workflow):
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--cvat-secret", "cvat"),
             "--store s3://models/t needs --s3-secret NAME", "AWS_SECRET_ACCESS_KEY")


def test_a_workdir_off_the_claim_is_refused(workflow, tmp_path):
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--s3-secret", "s3",
                      "--cvat-secret", "cvat", "--workdir", "/srv/elsewhere"),
             "--workdir /srv/elsewhere is not under --mount-path")


def test_a_bad_hyperparameter_is_named_when_rendering(workflow):
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--s3-secret", "s3",
                      "--cvat-secret", "cvat", "--hparams", "num-stepz=10"), "num-stepz")


def test_an_unknown_model_is_refused(workflow):
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--s3-secret", "s3",
                      "--cvat-secret", "cvat", "--model", "yolo-v99"), "yolo-v99")


def test_a_run_name_that_is_no_kubernetes_name_is_refused(workflow):
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--s3-secret", "s3",
                      "--cvat-secret", "cvat", "--run-name", "Nightly_7"),
             "--run-name 'Nightly_7'", "lower-case")


def test_a_task_id_below_one_is_refused(workflow):
    _refused(workflow("--task", 0, "--store", "s3://models/t", "--s3-secret", "s3",
                      "--cvat-secret", "cvat"), "--task 0")


@pytest.mark.parametrize("args, needles", [
    (["--store-namespace", "team a"], ["namespace 'team a' may hold letters, digits"]),
    (["--store", "s3://Models/t"], ["'Models' is not a valid S3 bucket name"]),
    (["--weights", "cocoo"], ["--weights 'cocoo': give coco, imagenet, none"]),
    (["--model", "ssd-mobilenet-v2", "--weights", "coco"],
     ["ssd-mobilenet-v2 has no published coco weights"]),
    (["--gpus", "1", "--hparams", "num-clones=4"], ["num-clones=4"]),
    (["--hparams", "stage-1-epochs=2"], ["stage-N-epochs apply to maskrcnn only"]),
    (["--service-account", "Argo_Runner"], ["--service-account 'Argo_Runner' is not a "
                                            "Kubernetes name"]),
    (["--run-as", f"{2**31}:100"], [f"--run-as {2**31}:100: user and group ids are 0 to "
                                    f"{2**31 - 1}"]),
    (["--run-name", "nightly\n"], ["--run-name 'nightly\\n'"]),
])
def test_what_a_pod_would_refuse_is_refused_when_rendering(args, needles, workflow):
    """The pods check their parameters as they run (the store, its namespace, the model,
    its hyperparameters and weights, the GPUs): a manifest that would fail there is not
    written."""
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--s3-secret", "s3",
                      "--cvat-secret", "cvat", *args), *needles)


def test_cluster_alone_prints_its_commands(cli):
    r = cli("cluster")
    assert r.code == 2 and "render" in r.out
    r = cli("cluster", "render")
    assert r.code == 2 and "tfjob" in r.out and "workflow" in r.out


def test_a_relative_run_to_start_from_is_refused(workflow):
    _refused(workflow("--task", 7, "--store", "s3://models/t", "--s3-secret", "s3",
                      "--cvat-secret", "cvat", "--weights", "runs/earlier"),
             "--weights runs/earlier", "absolute path on the claim")


@pytest.mark.parametrize("kind", ["tfjob", "workflow"])
def test_render_commands_have_help(kind, capsys):
    with pytest.raises(SystemExit) as e:
        main(["cluster", "render", kind, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: cvatkit cluster render {kind}")
    assert "--mount-path" in out and "--s3-secret" in out
