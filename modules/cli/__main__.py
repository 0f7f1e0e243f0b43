"""``python -m nova_infant.cli``: the ``nova-infant`` command (:func:`nova_infant.cli.main`), for environments
where the console script is not on PATH (scripts/install.sh, the Makefile, DISCOVER venvs)."""

import sys

from nova_infant.cli import main

sys.exit(main())
