"""The benchmark scripts behind the README's numbers; run them from the repository root as modules::

    python -m benchmarks.mazes --quick
    python -m benchmarks.speed --quick

Each script imports the shared helpers as ``from benchmarks import common`` (no ``sys.path`` edits).
"""
