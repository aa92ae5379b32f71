"""The metrics domain: windows, counters, and the figures derived from them (pure, no I/O)."""
