# Bump on every change of requirements.txt: DISCOVER builds one venv per <folder>@<version>.
_MAJOR_VERSION = 0
_MINOR_VERSION = 1
_PATCH_VERSION = 0
__version__ = f"{_MAJOR_VERSION}.{_MINOR_VERSION}.{_PATCH_VERSION}"
