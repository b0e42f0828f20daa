"""A CVAT task from where it is: an export (zip or folder, two formats), or a task or a
project on a server."""

from __future__ import annotations

import os
import re

from ..errors import SourceError, UsageError
from .coco import CocoSource, coco_files
from .container import Container
from .cvat_xml import ANNOTATIONS, CvatXmlSource
from .jobs import ALL, AUTO, parse_jobs
from .projects import CvatProjectSource
from .server import CvatServerSource, connect
from .source import Source

_CVAT_URI = re.compile(r"^cvat://(?:(?P<project>project)/)?(?P<id>[^/?#]*)/?\Z")
SOURCE_HELP = ("a path to a CVAT export (.zip or folder), cvat://TASK_ID or "
               "cvat://project/PROJECT_ID (a project: all its tasks)")


def parse_cvat_uri(text: str) -> tuple[str, int] | None:
    """``("task", ID)`` or ``("project", ID)`` for a ``cvat://`` address; None for anything
    else. A malformed ``cvat://`` address is refused with the forms it may take."""
    m = _CVAT_URI.match(text)
    if m is None:
        if text.startswith("cvat://"):
            raise UsageError(f"{text!r}: a CVAT task is named cvat://TASK_ID (e.g. cvat://42), "
                             "a project cvat://project/PROJECT_ID")
        return None
    kind = m["project"] or "task"
    if not m["id"].isdigit() or int(m["id"]) < 1:
        form = "project/PROJECT_ID" if m["project"] else "TASK_ID"
        raise UsageError(f"{text!r}: a CVAT {kind} is named cvat://{form} with the {kind}'s "
                         f"number (1 or more), e.g. cvat://{'project/' if m['project'] else ''}"
                         "42")
    return kind, int(m["id"])


def open_source(uri: str | os.PathLike[str], *, server_host: str | None = None,
                client=None, jobs: str = AUTO, **credentials) -> Source:
    """The source behind ``uri``: an export folder or zip, ``cvat://TASK_ID`` or
    ``cvat://project/PROJECT_ID``.

    For ``cvat://`` the server is ``client`` if given, else ``server_host`` or
    ``$CVAT_HOST``, logged in with ``credentials`` (see ``connect``) or the environment.
    ``jobs`` picks the jobs whose frames are read (``jobs.JOBS_HELP``; exports have none).
    """
    text = os.fspath(uri)
    words = parse_jobs(jobs)
    found = parse_cvat_uri(text)
    if found is not None:
        kind, number = found
        if client is None:
            client = connect(server_host, **credentials)
        if kind == "project":
            return CvatProjectSource(client, number, jobs=words)
        return CvatServerSource(client, number, jobs=words)
    if "://" in text:
        raise UsageError(f"{text!r}: give {SOURCE_HELP}")
    if words not in ((AUTO,), (ALL,)):
        raise UsageError(
            f"--jobs {jobs}: {text} is an export, which carries no job stages or states; "
            "give the task as cvat://TASK_ID to choose its jobs, or leave --jobs out")
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
