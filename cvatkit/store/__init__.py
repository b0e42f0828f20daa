"""The model store: trained models kept as versions in an S3 bucket or a local folder
(publish, list, pull), and a local S3 server (SeaweedFS) for the demo and the tests."""

from .backends import LocalStore, S3Store, Store, StoredObject, check_store_uri, open_store
from .versions import (MANIFEST, ModelVersion, check_namespace, is_version_uri, list_models,
                       model_pages, publish, pull, run_files)

__all__ = ["LocalStore", "MANIFEST", "ModelVersion", "S3Store", "Store", "StoredObject",
           "check_namespace", "check_store_uri", "is_version_uri", "list_models",
           "model_pages", "open_store", "publish", "pull", "run_files"]
