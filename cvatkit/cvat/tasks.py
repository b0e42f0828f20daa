"""A CVAT task from where it is: an export (zip or folder, two formats) or a server."""

from __future__ import annotations

import os
import re

from ..errors import SourceError, UsageError
from .coco import CocoSource, coco_files
from .container import Container
from .cvat_xml import ANNOTATIONS, CvatXmlSource
from .server import CvatServerSource, connect
from .source import Source

_CVAT_URI = re.compile(r"^cvat://(?P<id>[^/?#]*)/?\Z")


def open_source(uri: str | os.PathLike[str], *, server_host: str | None = None,
                client=None, **credentials) -> Source:
    """The source behind ``uri``: an export folder or zip, or ``cvat://TASK_ID``.

    For ``cvat://`` the server is ``client`` if given, else ``server_host`` or
    ``$CVAT_HOST``, logged in with ``credentials`` (see ``connect``) or the environment.
    """
    text = os.fspath(uri)
    m = _CVAT_URI.match(text)
    if m:
        if not m["id"].isdigit() or int(m["id"]) < 1:
            raise UsageError(f"{text!r}: a CVAT task is named cvat://TASK_ID with the task's "
                             "number (1 or more), e.g. cvat://42")
        if client is None:
            client = connect(server_host, **credentials)
        return CvatServerSource(client, int(m["id"]))
    if "://" in text:
        raise UsageError(
            f"{text!r}: give a path to a CVAT export (.zip or folder) or cvat://TASK_ID")
    return open_export(text)


def open_export(path: str | os.PathLike[str]) -> Source:
    """A CVAT export, "CVAT for images 1.1" or "COCO 1.0", as a zip or a folder."""
    container = Container(path)
    xml, coco = container.exists(ANNOTATIONS), coco_files(container)
    if xml and coco:
        container.close()
        raise SourceError(
            f"{path} holds two exports' annotations, {ANNOTATIONS} ('CVAT for images 1.1') "
            f"and {', '.join(coco)} ('COCO 1.0'), which may disagree; give an export that "
            "holds one of them, as CVAT writes it")
    if xml:
        return CvatXmlSource(container)
    if coco:
        return CocoSource(container)
    hint = container.layout_hint()
    container.close()
    raise SourceError(
        f"{path} is not a CVAT export: it has neither annotations.xml ('CVAT for images "
        f"1.1') nor annotations/instances_*.json ('COCO 1.0') at its top level (it holds: "
        f"{hint}); export the task from CVAT in one of those formats with 'Save images' "
        "checked")
