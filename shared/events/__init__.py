"""Every integration event of the platform, one module per topic family.

This list is explicit on purpose: importing this package registers every event, and a
module missing here is an event nobody can decode.
"""

from shared.events import platform

__all__ = ["platform"]
