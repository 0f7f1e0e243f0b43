"""Module specs: one declaration per module (options, inputs, outputs, the function it runs) from which the
``.trainer`` files, the CLI sub-commands, the DISCOVER ``Processor`` classes and ``trainers/nova_infant/README.md``
are generated. See :mod:`nova_infant.specs.module_spec` and :mod:`nova_infant.specs.registry`."""
