"""Make ``nova_infant`` importable for the DISCOVER scripts in this folder.

du-process loads a trainer's script with ``SourceFileLoader``, so this folder is not on ``sys.path``. Each script
puts it there and imports this file: if ``nova_infant`` is not pip-installed in the environment, the package is
loaded from the checkout this folder lives in (``../../modules``).
"""

import importlib.util
import os
import sys

try:
    import nova_infant  # noqa: F401  (installed: nothing to do)
except ImportError:
    _root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "modules")
    _spec = importlib.util.spec_from_file_location("nova_infant", os.path.join(_root, "__init__.py"),
                                                   submodule_search_locations=[_root])
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["nova_infant"] = _module
    _spec.loader.exec_module(_module)
