"""The ``estimator-table`` directive: the estimator table of the docs, read from the estimator registry.

Each row is one :data:`sb3_maxrl.common.estimators.ESTIMATOR_REGISTRY` entry (its formula, the options it takes,
its exact target), so the table cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

from sb3_maxrl.common.estimators import ESTIMATOR_REGISTRY, ESTIMATORS


def estimator_table_rst() -> list[str]:
    """The table as reST ``list-table`` lines, one row per registered estimator, in the order of ``ESTIMATORS``."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 14 38 16 32", ""]
    lines += ["   * - ``estimator``", "     - advantage ``A_i``", "     - options", "     - expected gradient (exact)"]
    for name in ESTIMATORS:
        entry = ESTIMATOR_REGISTRY[name]
        options = ", ".join(f"``{option}``" for option in entry.options) or "none"
        target = f"``{entry.target}``" + (", **binary l only**" if entry.binary_only else "")
        lines += [f"   * - ``{name}``", f"     - {entry.formula}", f"     - {options}", f"     - {target}"]
    return lines


class EstimatorTable(Directive):
    """``.. estimator-table::`` (in MyST markdown: inside an ``{eval-rst}`` block): the registry as a table."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(estimator_table_rst(), source="estimator registry"), self.content_offset, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("estimator-table", EstimatorTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
