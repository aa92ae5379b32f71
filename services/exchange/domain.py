"""The exchange service's domain model: pure Python, no I/O."""
