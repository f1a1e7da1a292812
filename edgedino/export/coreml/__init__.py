"""Core ML: the export target (convert), the checks Linux can run on a package (static_checks, numeric_check),
int8 activation ranges (calibration), the program's constants (constants) and a reference interpreter of ML
programs in numpy (interpreter). Only `convert` imports torch."""


def __getattr__(name: str):
    """`edgedino.export.coreml.CoreMLTarget` and the other names of the old module coreml.py: deprecated."""
    import importlib
    import warnings

    convert = importlib.import_module("edgedino.export.coreml.convert")
    if name.startswith("__") or not hasattr(convert, name):
        raise AttributeError(f"module 'edgedino.export.coreml' has no attribute {name!r}")
    warnings.warn(f"edgedino.export.coreml.{name} is now edgedino.export.coreml.convert.{name}; the old name goes "
                  "in edgedino 0.3", DeprecationWarning, stacklevel=2)
    return getattr(convert, name)
