"""Fakes that stand in for what a test cannot or need not run: a CVAT server speaking the
REST API as recorded from a real one (``cvat_server``), SavedModels with known outputs
(``saved_models``), a training loop with scripted evaluations (``training_loop``) and a
progress that records what a job reports (``progress``)."""
