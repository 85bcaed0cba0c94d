"""A config file's ``config:`` include, merged key by key.

jsonargparse reads a top-level ``config: FILE`` inside a config file as an include: it applies
``FILE`` first, then each top-level group the including file gives *replaces* the included one
whole, so a dataset config that names ``conf/shared/trainer.yaml`` and gives its own
``trainer.logger`` would lose the shared trainer values and callbacks. The CLI therefore passes
each included file as a ``-c`` of its own just before the file that includes it: two ``-c``
files merge key by key (jsonargparse's rule for several configs: a later value replaces an
earlier one, a list given as ``key+:`` is appended to), and the dataset config holds only what
differs. The command-line values after the ``-c`` files still win; ``--print_config`` and the
run's ``config.yaml`` show the merged result, without the ``config:`` key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

CONFIG_OPTIONS = ("-c", "--config")


def included_configs(path: Path, including: tuple[Path, ...] = ()) -> list[Path]:
    """The files ``path`` includes through its top-level ``config:`` key (a path relative to
    ``path``'s folder, or absolute), each after the files it includes itself, in the order
    they apply.

    Nothing for a file that does not exist or is not a YAML mapping with a ``config:`` string
    (jsonargparse reads it and reports what is wrong with it).

    Raises:
        ValueError: a file includes itself, directly or through others (naming the chain).
    """
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    name = content.get("config") if isinstance(content, dict) else None
    if not isinstance(name, str):
        return []
    target = path.parent / Path(name).expanduser()  # an absolute name replaces the folder
    chain = (*including, path)
    if target.resolve() in {p.resolve() for p in chain}:
        cycle = " -> ".join(str(p) for p in (*chain, target))
        raise ValueError(f"config files include each other: {cycle}; expected no cycle")
    return [*included_configs(target, chain), target]


def with_included_configs(args: Sequence[str]) -> list[str]:
    """``args`` with every included file (:func:`included_configs`) given as ``-c FILE`` just
    before the ``-c``/``--config`` option that names the including file.

    E.g. ``fit -c conf/lspet.yaml --trainer.max_epochs=3`` becomes
    ``fit -c conf/shared/trainer.yaml -c conf/lspet.yaml --trainer.max_epochs=3``.
    """
    out: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg in CONFIG_OPTIONS and position + 1 < len(args):
            value, taken = args[position + 1], [arg, args[position + 1]]
        elif arg.startswith("--config="):
            value, taken = arg.removeprefix("--config="), [arg]
        else:
            out.append(arg)
            position += 1
            continue
        for included in included_configs(Path(value)):
            out += ["-c", str(included)]
        out += taken
        position += len(taken)
    return out
