"""The handler of a CVAT serverless function (Nuclio) around a cvatkit model.

``cvatkit serverless`` copies this file as ``main.py`` into the function's folder, beside
the model (``model/``), a copy of cvatkit and ``cvatkit-function.json``. Nuclio calls
``init_context`` once per worker, then ``handler`` per request; CVAT's lambda manager
sends ``{"image": BASE64, "threshold": T}`` and takes back a list of shapes:
``{"label", "points", "type", "confidence", "attributes"}``. The score also travels as a
``score`` attribute, which CVAT keeps on labels that have a text attribute of that name.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = "cvatkit-function.json"


def init_context(context) -> None:
    from cvatkit.inference.loader import load_detector

    settings = json.loads((HERE / SETTINGS).read_text())
    context.logger.info("loading the model")
    context.user_data.detector = load_detector(HERE / "model")
    context.user_data.settings = settings
    context.logger.info("model ready")


def handler(context, event):
    from cvatkit.errors import CvatkitError

    try:
        shapes = detect(context.user_data.detector, context.user_data.settings,
                        _body(event.body))
    except (CvatkitError, ValueError) as e:  # what the request holds: say so, as a 400
        return _answer(context, 400, {"error": str(e)})
    return _answer(context, 200, shapes)


def detect(detector, settings: dict, body: dict) -> list[dict]:
    """The shapes CVAT takes for one request's image."""
    from cvatkit.images import decode_rgb
    from cvatkit.inference.detector import check_threshold

    if not isinstance(body, dict) or not isinstance(body.get("image"), str):
        raise ValueError("the request has no image: send {\"image\": BASE64, "
                         "\"threshold\": T} as CVAT does")
    try:
        data = base64.b64decode(body["image"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the request's image is not base64") from None
    threshold = body.get("threshold", settings["threshold"])
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold {threshold!r} is not a number") from None
    check_threshold(threshold)
    pixels = decode_rgb(data, "the request's image")
    found = detector.detect([pixels], threshold=threshold,
                            max_detections=settings["max_detections"], polygons=True)[0]
    return [{"label": s.label, "points": [round(float(p), 2) for p in s.points],
             "type": s.kind, "confidence": f"{s.score:.4f}",
             "attributes": [{"name": "score", "value": f"{s.score:.4f}"}]}
            for s in found]


def _body(body):
    if isinstance(body, (bytes, str)):
        try:
            return json.loads(body)
        except ValueError:
            raise ValueError("the request's body is not JSON") from None
    return body


def _answer(context, status: int, data) -> object:
    return context.Response(body=json.dumps(data), headers={},
                            content_type="application/json", status_code=status)
