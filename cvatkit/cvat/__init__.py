"""CVAT's side of the job: its export formats (readers and writers), tasks on a CVAT
server through cvat-sdk, conversions to and from ``cvat_sdk.models``, part of a task as an
export of its own, and the built-in sample task."""

from .coco import CocoSource, write_coco
from .cvat_xml import CvatXmlSource, cvat_xml_bytes, write_cvat_xml
from ..frame_choices import JOB_CHOICES, JOBS_HELP
from .frame_tags import TagResult, tag_frames, tag_source_frames
from .jobs import Job, JobChoice, choose_jobs, parse_jobs
from .projects import CvatProjectSource, list_projects
from .sample import DEFAULT_FRAMES as SAMPLE_FRAMES
from .sample import DEFAULT_TEST_FRAMES as SAMPLE_TEST_FRAMES
from .sample import LABELS as SAMPLE_LABELS
from .sample import TASK_ZIP, TEST_ZIP, SampleTask, sample_frame, write_sample
from .sdk import shape_to_cvat
from .server import (
                     HOST_ENV,
                     CvatServerSource,
                     connect,
                     disconnect,
                     list_tasks,
                     server_error,
                     server_host,
)
from .source import UNLABELLED, Source
from .subsets import write_subset
from .tasks import SOURCE_HELP, open_export, open_source, parse_cvat_uri

__all__ = ["CocoSource", "CvatProjectSource", "CvatServerSource", "CvatXmlSource",
           "HOST_ENV", "JOBS_HELP", "JOB_CHOICES", "Job", "JobChoice", "SAMPLE_FRAMES",
           "SAMPLE_LABELS", "SAMPLE_TEST_FRAMES", "SOURCE_HELP", "SampleTask", "Source",
           "TASK_ZIP", "TEST_ZIP", "TagResult", "UNLABELLED", "choose_jobs", "connect",
           "cvat_xml_bytes", "disconnect", "list_projects", "list_tasks", "open_export",
           "open_source", "parse_cvat_uri", "parse_jobs", "sample_frame", "server_error",
           "server_host", "shape_to_cvat", "tag_frames", "tag_source_frames", "write_coco",
           "write_cvat_xml", "write_sample", "write_subset"]
