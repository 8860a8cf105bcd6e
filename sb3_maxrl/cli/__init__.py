"""Command-line tools: ``maxrl-train``, ``maxrl-zoo`` (needs the ``zoo`` extra) and ``maxrl-plot`` (``plots``).

``maxrl-zoo`` and ``maxrl-plot`` start through :func:`zoo_main` and :func:`plot_main`, which turn a missing
optional dependency into a one-line error naming the extra to install instead of a traceback.
"""

from __future__ import annotations

import importlib
from pathlib import Path

#: The rl-zoo3 configs shipped with the package (``maxrl.yml``, ``ppo.yml``); ``<repo>/zoo_configs`` links here.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "zoo_configs"


class MissingExtraError(ImportError):
    """
    An optional dependency of a command is not installed; the message says which pip extra installs it.

    :param command: the command that needs it (``maxrl-zoo``)
    :param extra: the extra of ``sb3-maxrl`` that installs it (``zoo``)
    :param error: the ImportError raised by the missing module
    """

    def __init__(self, command: str, extra: str, error: ImportError) -> None:
        missing = error.name or str(error)
        super().__init__(
            f'{command} needs {missing!r}, which is not installed: pip install "sb3-maxrl[{extra}]"', name=error.name
        )
        self.extra = extra


def _run_main(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except MissingExtraError as error:
        raise SystemExit(f"error: {error}") from None
    module.main()


def zoo_main() -> None:
    """Entry point of ``maxrl-zoo``: :func:`sb3_maxrl.cli.zoo.main`."""
    _run_main("sb3_maxrl.cli.zoo")


def plot_main() -> None:
    """Entry point of ``maxrl-plot``: :func:`sb3_maxrl.cli.plot.main`."""
    _run_main("sb3_maxrl.cli.plot")
