"""Moved modules keep working under their old names for a release, with a DeprecationWarning naming the new one."""

import importlib

import pytest

from edgedino.moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_name_warns_and_gives_the_same_objects(old):
    new = importlib.import_module(MOVED[old])
    with pytest.warns(DeprecationWarning, match=f"{old} is now {MOVED[old]}"):
        module = importlib.reload(importlib.import_module(old))
    public = [k for k in vars(new) if not k.startswith("_")]
    assert public and all(getattr(module, k) is getattr(new, k) for k in public)


def test_names_of_the_old_coreml_module_warn():
    from edgedino.export.coreml import convert

    with pytest.warns(DeprecationWarning, match="edgedino.export.coreml.convert.CoreMLTarget"):
        from edgedino.export.coreml import CoreMLTarget
    assert CoreMLTarget is convert.CoreMLTarget
    with pytest.raises(ImportError):
        from edgedino.export.coreml import no_such_name  # noqa: F401


def test_names_of_the_old_distill_step_module_warn():
    from edgedino.train import distill_step

    with pytest.warns(DeprecationWarning, match="edgedino.train.distill_step.DistillStep"):
        from edgedino.train.distill import DistillStep
    assert DistillStep is distill_step.DistillStep
