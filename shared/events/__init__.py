"""Every integration event of the platform, one module per producing service.

This list is explicit on purpose: importing this package registers every event, and a
module missing here is an event nobody can decode.
"""

from shared.events import catalog, exchange, identity, metrics, platform

__all__ = ["catalog", "exchange", "identity", "metrics", "platform"]
