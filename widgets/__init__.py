"""ipywidgets views over cvatkit (task picker, model form, run monitor, ...)."""
