"""The model as a CVAT serverless function: the folder ``cvatkit serverless`` writes, its
handler called as Nuclio calls it, and real CVAT's lambda manager running automatic
annotation through it (``real_cvat``, with the Nuclio stand-in)."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml
from fakes.nuclio import Context, loaded_modules
from fakes.saved_models import model_garden_like
from helpers import folded
from real_cvat import jpeg_files, make_task

from cvatkit.cli import main
from cvatkit.cvat import sample_frame
from cvatkit.label_files import write_label_files
from cvatkit.records import LabelMap

LABELS = ("square", "triangle", "circle")
FRAMES = 3


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = model_garden_like(tmp_path_factory.mktemp("model") / "mg")
    write_label_files(LabelMap.from_names(LABELS), path)
    return path


@pytest.fixture(scope="module")
def function(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("function") / "fn"
    assert main(["serverless", str(model), str(out), "--name", "cvatkit-shapes",
                 "--display-name", "Shapes", "--threshold", "0.3"]) == 0
    return out


def load_handler(folder):
    """``main.py`` of ``folder`` as Nuclio loads it, with the folder first on the path."""
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location("nuclio_main", folder / "main.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


class Event:
    def __init__(self, body):
        self.body = body


def test_the_folder_is_what_nuctl_and_cvat_read(function, model, capsys):
    config = yaml.safe_load((function / "function.yaml").read_text())
    meta = config["metadata"]
    assert meta["name"] == "cvatkit-shapes" and meta["annotations"]["type"] == "detector"
    assert meta["annotations"]["name"] == "Shapes"
    spec = json.loads(meta["annotations"]["spec"])
    assert [(s["name"], s["type"]) for s in spec] == [(n, "rectangle") for n in LABELS]
    assert config["spec"]["handler"] == "main:handler"
    assert config["spec"]["build"]["baseImage"].startswith("tensorflow/tensorflow:")
    gpu = yaml.safe_load((function / "function-gpu.yaml").read_text())
    assert gpu["spec"]["build"]["baseImage"].endswith("-gpu")
    assert gpu["spec"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    requirements = (function / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} == {"numpy", "pillow"}
    assert (function / "model" / "saved_model.pb").is_file()
    assert (function / "cvatkit" / "inference" / "loader.py").is_file()
    # written again over itself when asked; the deploy lines are printed
    assert main(["serverless", str(model), str(function), "--name", "cvatkit-shapes",
                 "--display-name", "Shapes", "--threshold", "0.3", "--overwrite"]) == 0
    out = folded(capsys.readouterr().out)
    assert f"nuctl deploy --project-name cvat --path {function} --platform local" in out
    assert "--file" in out and "function-gpu.yaml" in out


def test_the_handler_answers_as_cvat_expects(function):
    module = load_handler(function)
    context = Context("test")
    module.init_context(context)
    frame, jpeg = sample_frame(3, 0, index=0)
    body = {"image": base64.b64encode(jpeg).decode(), "threshold": 0.5}
    answer = module.handler(context, Event(body))
    assert answer.status_code == 200
    shapes = json.loads(answer.body)
    assert shapes and {s["type"] for s in shapes} == {"rectangle"}
    for s in shapes:
        assert s["label"] in LABELS and len(s["points"]) == 4
        assert float(s["confidence"]) >= 0.5
        assert s["attributes"] == [{"name": "score", "value": s["confidence"]}]
    # what a request holds that is wrong is answered 400, saying what
    for bad, says in ((dict(body, image="not base64!"), "not base64"),
                      (dict(body, image=base64.b64encode(b"GIF89a junk").decode()),
                       "the request's image"),
                      (dict(body, threshold=7), "threshold"),
                      ({"threshold": 0.5}, "has no image"),
                      (b"{not json", "not JSON")):
        answer = module.handler(context, Event(bad))
        assert answer.status_code == 400, bad
        assert says in json.loads(answer.body)["error"]


def test_bad_input_of_the_command(model, tmp_path, capsys):
    taken = tmp_path / "taken"
    (taken / "x").mkdir(parents=True)
    assert main(["serverless", str(model), str(taken)]) == 2
    assert "give a new folder for the function" in folded(capsys.readouterr().err)
    assert main(["serverless", str(model), str(tmp_path / "f"), "--name", "Bad_Name"]) == 2
    assert "lower-case letters, digits and dashes" in folded(capsys.readouterr().err)
    assert not (tmp_path / "f").exists()


def functions(client) -> list[dict]:
    """CVAT's list of lambda functions (``/api/lambda/functions``)."""
    _, answer = client.api_client.lambda_api.list_functions(_parse_response=False)
    return json.loads(answer.data)


def start_request(client, name: str, task: int) -> str:
    """A ``/api/lambda/requests`` for all the task's frames; its id."""
    from cvat_sdk import models

    _, answer = client.api_client.lambda_api.create_requests(
        models.FunctionCallRequest(function=name, task=task, threshold=0.5, cleanup=False),
        _parse_response=False)
    return json.loads(answer.data)["id"]


def wait_for_request(client, request_id: str) -> dict:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        _, answer = client.api_client.lambda_api.retrieve_requests(request_id,
                                                                   _parse_response=False)
        found = json.loads(answer.data)
        if found["status"] in ("finished", "failed"):
            return found
        time.sleep(0.5)
    raise AssertionError(f"lambda request {request_id} did not end: {found}")


@pytest.mark.slow
def test_cvat_runs_automatic_annotation_through_the_function(real_cvat, function,
                                                             tmp_path):
    if real_cvat.nuclio is None:
        pytest.skip("this CVAT's lambda manager calls no Nuclio the tests run: set "
                    "CVATKIT_TEST_NUCLIO_PORT to the port it calls on this machine")
    name = real_cvat.nuclio.deploy(function)
    client = real_cvat.client()
    try:
        # the handler runs on the cvatkit copied into the function's folder
        port = real_cvat.nuclio.functions[name]["status"]["httpPort"]
        assert loaded_modules(port)["cvatkit"] == str(function / "cvatkit" / "__init__.py")
        mine = next(f for f in functions(client) if f["id"] == name)
        assert mine["kind"] == "detector" and mine["name"] == "Shapes"
        assert [label["name"] for label in mine["labels_v2"]] == list(LABELS)
        # the task's labels have the text attribute "score": CVAT keeps each shape's
        frames = [sample_frame(3, i, index=i) for i in range(FRAMES)]
        files = jpeg_files(tmp_path / "frames", [(f.name, data) for f, data in frames])
        task = make_task(client, "automatic", files, labels=[(n, "any") for n in LABELS],
                         score_attribute=True)
        done = wait_for_request(client, start_request(client, name, task))
        assert done["status"] == "finished", done
        shapes = client.tasks.retrieve(task).get_annotations().shapes
        assert {s.frame for s in shapes} == set(range(FRAMES))
        ids = {label.id: label for label in client.tasks.retrieve(task).get_labels()}
        for s in shapes:
            score = {ids[s.label_id].attributes[0].id: a.value for a in s.attributes}
            assert 0.5 <= float(next(iter(score.values()))) <= 1
        # a function that fails reaches CVAT as a failed request, not a hang
        real_cvat.nuclio.stop_runtime(name)
        assert wait_for_request(client, start_request(client, name, task))["status"] == "failed"
    finally:
        real_cvat.nuclio.remove(name)
        client.close()


def test_a_bad_request_to_the_running_function_gets_a_400(real_cvat, function):
    if real_cvat.nuclio is None:
        pytest.skip("no Nuclio stand-in for this CVAT")
    name = real_cvat.nuclio.deploy(function)
    try:
        port = real_cvat.nuclio.functions[name]["status"]["httpPort"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", method="POST",
            data=json.dumps({"image": "%%%"}).encode(),
            headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=120)
        assert caught.value.code == 400
        assert "not base64" in json.loads(caught.value.read())["error"]
    finally:
        real_cvat.nuclio.remove(name)
