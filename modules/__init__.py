"""nova-infant: NOVA/DISCOVER modules for coding infant-caregiver interaction videos.

Layers, each importing only those below it (``tests/test_layers.py`` keeps it so):

- ``core``: NOVA I/O (``streams``, ``annotations``, ``trainer_files``, ``nova_db``), the write policy
  (``atomic``), the output frame ``grid``, ``media`` decoding, saved models, backbones;
- domain packages (``features``, ``icep``, ``taggers``, ``cry``, ``valence``, ``affect``, ``review``): arrays in,
  arrays out;
- ``specs``: one declaration per module;
- ``discover`` and ``cli``: DISCOVER adapters and the command line, generated from the specs.
"""

__version__ = "0.1.0"
