"""A reference interpreter of saved Core ML ML programs, in numpy: numeric checks where Apple's runtime is absent."""

from edgedino.export.coreml.interpreter.program import Program, known_ops

__all__ = ["Program", "known_ops"]
