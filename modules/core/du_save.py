"""discover-utils' ``FileHandler.save`` routed through this package's atomic writer
(:func:`nova_infant.core.atomic.save_atomic`), for du-process (:mod:`nova_infant.discover.common` installs it on
import) and NOVA database mode (:func:`nova_infant.core.nova_db.write_stream`).

discover-utils' ``FileHandler.save`` truncates the old header and data files in place, so a kill or a full disk
destroys the previous stream; the wrapper stages and replaces the pair instead, in this process only (the installed
library is not changed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nova_infant.core.atomic import save_atomic
from nova_infant.core.errors import NovaInfantError
from nova_infant.core.write_policy import install_db_checks

log = logging.getLogger("nova_infant")


def install_atomic_writer() -> None:
    """Route discover-utils' ``FileHandler.save`` through :func:`~nova_infant.core.atomic.save_atomic` (idempotent).

    du-process saves every output with ``FileHandler().save(data, path)`` (file mode) or through
    ``StreamHandler.save`` -> ``FileHandler().save`` (NOVA database mode). The wrapper keeps the library's own
    writer for the bytes and only changes where they go first (a staging folder) and how they replace the old
    files. A failure is logged as one line naming the file, then raised (du-process reports it and goes on with
    the next session).

    Returns
    -------
    None
        Patches ``discover_utils.data.handler.file_handler.FileHandler.save`` in this process.

    Raises
    ------
    OutputError
        (from the wrapped writer) full disk, read-only folder, lock held too long; the previous files are kept.
    """
    from discover_utils.data.handler import file_handler

    handler_class = file_handler.FileHandler
    if getattr(handler_class.save, "_nova_infant_atomic", False):
        return
    original = handler_class.save

    def save(self, data, fp, overwrite=True, dtype=None, *args, **kwargs):
        fp = Path(fp)
        if not fp.suffix:
            fp = fp.parent / (fp.name + self._get_handler(fp, dtype).default_ext)
        if fp.exists() and not overwrite:
            raise FileExistsError(f"Cannot write {fp} because file already exists")

        def write(obj, staged):
            original(self, obj, staged, True, dtype, *args, **kwargs)

        try:
            return save_atomic(data, fp, writer=write)
        except NovaInfantError as exc:
            log.error("%s: %s", type(exc).__name__, exc)
            raise

    save._nova_infant_atomic = True
    save._nova_infant_original = original
    save.__doc__ = original.__doc__
    handler_class.save = save
    install_db_checks()  # database mode: coders' annotations and annotator names (core.write_policy)
