"""Experiment protocols on top of ``MaxRL``: the paper's weak-base protocol for any task, and resumable grids of runs."""
