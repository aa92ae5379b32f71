"""The metrics service's domain model: pure Python, no I/O."""
