"""The identity service's domain model: pure Python, no I/O."""
