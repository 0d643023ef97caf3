"""The pipeline engineer's harness (tests/pipeline/conftest.py): the synthesized state machine
executed under moto with the real handlers, reused here rather than a second harness."""

from tests.pipeline.conftest import pipeline, pipeline_template

__all__ = ["pipeline", "pipeline_template"]
