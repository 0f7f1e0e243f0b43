"""NOVA ``.trainer`` files: written by hand (discover-utils' writer loses ``rightContext``/``is_iterable``, and NOVA
hides any trainer without ``trained="true"``; see docs/discover-integration notes), atomically
(:mod:`nova_infant.core.atomic`), and read back with discover-utils' parser (hcai-discover-utils 1.2.1).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from nova_infant.core.atomic import save_atomic
from nova_infant.core.errors import TrainerFileError
from nova_infant.core.write_policy import register_input


@dataclass
class TrainerIO:
    """One ``<io>`` entry of a ``.trainer``.

    Attributes
    ----------
    type : str
        ``"input"`` or ``"output"``.
    id : str
        The key of the module's data dict (du-process ``--data`` id).
    data : str
        NOVA io type, e.g. ``stream:Video``, ``stream:SSIStream:dinov2``, ``annotation:Discrete``.
    default_value : str
        Stream or scheme name NOVA preselects.
    default_active : bool
    """

    type: str
    id: str
    data: str
    default_value: str = ""
    default_active: bool = True


@dataclass
class TrainerSpec:
    """What a ``.trainer`` holds (see :func:`write_trainer`).

    Attributes
    ----------
    script, create : str
        The DISCOVER script file and the Processor class it defines.
    description, category : str
        Shown in NOVA.
    io : list of TrainerIO
    options : list of (name, TYPE, default)
        TYPE in STRING, BOOL, LIST (a LIST default is the comma-separated choices, the first being the default).
    frame_step_ms, left_context_ms, right_context_ms : float
        In ms.
    is_iterable, trained, enable_post_process, is_trainable : bool
        The ``<info>``/``<meta>`` flags du-process and NOVA read.
    weights_path : str
        ``<model path=...>`` of a trained model.
    """

    script: str
    create: str
    description: str
    category: str
    io: list[TrainerIO]
    options: list[tuple[str, str, str]] = field(default_factory=list)
    frame_step_ms: float = 0
    left_context_ms: float = 0
    right_context_ms: float = 0
    is_iterable: bool = False
    weights_path: str = ""
    trained: bool = True
    enable_post_process: bool = False
    is_trainable: bool = False


def option_string(options: Sequence[tuple[str, str, str]]) -> str:
    """``{name:TYPE:default};...`` as NOVA parses it.

    Raises
    ------
    TrainerFileError
        If a name or default contains ``:``, ``;``, ``{`` or ``}`` (NOVA splits on them).
    """
    parts = []
    for name, kind, default in options:
        text = str(default)
        if kind == "BOOL":
            text = "True" if str(default).lower() in ("1", "true", "yes") else "False"
        if any(ch in str(name) + text for ch in ":;{}"):
            raise TrainerFileError(f"option {name!r}: NOVA cannot parse ':', ';', '{{' or '}}' in {text!r}")
        parts.append(f"{{{name}:{kind}:{text}}}")
    return ";".join(parts)


def _ms(value: float) -> str:
    # DISCOVER parses frame step and contexts to integer ms ("40ms" -> 40).
    return f"{int(round(float(value)))}ms"


def write_trainer(path: str | os.PathLike, spec: TrainerSpec) -> Path:
    """Write a ``.trainer`` XML that NOVA lists and ``du-process`` runs; written atomically.

    Layout follows DISCOVER 1.1 / discover-utils 1.2.1 (``<trainer ssi-v="5"><info trained="true"/><meta …><io/>
    </meta><model create script optstr path/></trainer>``). Frame step and contexts are written as integer ms.

    Raises
    ------
    TrainerFileError
        For an option string NOVA could not parse.
    """
    path = Path(path)
    root = ET.Element("trainer", {"ssi-v": "5"})
    ET.SubElement(root, "info", {"trained": "true" if spec.trained else "false", "seed": "1234"})
    meta = ET.SubElement(root, "meta", {
        "backend": "nova-server",
        "category": spec.category,
        "description": spec.description,
        "frameStep": _ms(spec.frame_step_ms),
        "leftContext": _ms(spec.left_context_ms),
        "rightContext": _ms(spec.right_context_ms),
        "is_iterable": "True" if spec.is_iterable else "False",
        "is_trainable": "True" if spec.is_trainable else "False",
        "enable_post_process": "True" if spec.enable_post_process else "False",
    })
    for io in spec.io:
        ET.SubElement(meta, "io", {"type": io.type, "id": io.id, "data": io.data, "default_value": io.default_value,
                                   "default_active": "True" if io.default_active else "False"})
    ET.SubElement(root, "model", {"create": spec.create, "script": spec.script,
                                  "optstr": option_string(spec.options), "path": spec.weights_path})
    tree = ET.ElementTree(root)
    ET.indent(tree, space="    ")
    return save_atomic(tree, path, writer=lambda doc, staged: doc.write(staged, encoding="utf-8",
                                                                        xml_declaration=True))


def read_trainer(path: str | os.PathLike):
    """Parse a ``.trainer`` with discover-utils' own parser (what ``du-process``/DISCOVER use).

    Raises
    ------
    TrainerFileError
        If the file is missing, is not XML, or lacks ``<model create script>``.
    """
    from discover_utils.utils.ssi_xml_utils import Trainer

    path = Path(path)
    register_input(path)  # an output of this job may never replace it
    if not path.is_file():
        raise TrainerFileError(f"{path}: no such .trainer file")
    try:
        model = ET.parse(path).getroot().find("model")
        trainer = Trainer()
        trainer.load_from_file(path)
    except Exception as exc:
        raise TrainerFileError(f"{path}: malformed .trainer ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    # discover-utils fills in create="PythonModel" when the attribute is absent: check the file itself
    if model is None or not model.get("create") or not model.get("script"):
        raise TrainerFileError(f"{path}: <model> needs 'create' and 'script' attributes")
    return trainer
