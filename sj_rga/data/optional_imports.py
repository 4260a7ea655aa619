"""Imports of torchvision and ``spikingjelly.datasets``, kept out of the package's core.

Both import torchvision's compiled operators, which fail when the torch, torchvision and torchaudio builds
do not match (a CPU torch beside CUDA builds of torchvision/torchaudio, for example). They are imported only
inside the functions that need them, and a failure names the fix.
"""
from __future__ import annotations

import importlib
from types import ModuleType

#: What a user does when torchvision or spikingjelly.datasets cannot be imported.
INSTALL_FIX: str = (
    "install matching torch, torchvision and torchaudio builds, e.g. a plain `pip install sj-rga` "
    "(which pulls matching builds) in a fresh virtual environment"
)


def import_optional(module_name: str, purpose: str) -> ModuleType:
    """Import ``module_name`` or raise an ImportError that says what needed it and how to fix the install."""
    try:
        return importlib.import_module(module_name)
    except (ImportError, OSError, RuntimeError) as err:
        raise ImportError(f"{purpose} needs `{module_name}`, which failed to import ({err}): {INSTALL_FIX}.") from err
