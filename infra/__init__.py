"""Panjereh's infrastructure tooling: the `panjereh` CLI and the local platform it runs."""
