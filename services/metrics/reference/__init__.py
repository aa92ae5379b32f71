"""Versioned reference data that no event carries (see population.yaml for its source)."""
