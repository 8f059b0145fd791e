"""The old name of `run_directory`, kept only for bench/prior_correction.py, a measurement script kept as it
was run. New code imports `cce_demo.run_directory`."""
from .run_directory import load_models, read_run  # noqa: F401
