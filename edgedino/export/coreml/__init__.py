"""Core ML: the export target (convert), the checks Linux can run on a package (static_checks, numeric_check),
int8 activation ranges (calibration), the program's constants (constants) and a reference interpreter of ML
programs in numpy (interpreter). Only `convert` imports torch."""


from edgedino.moved import forwarding

# the names of the old module coreml.py (now convert.py): deprecated
__getattr__ = forwarding("edgedino.export.coreml", "edgedino.export.coreml.convert")
