"""Every integration event of the platform, one module per producing service (and one for
the development-only topics).

This list is explicit on purpose: importing this package registers every event, and a
module missing here is an event nobody can decode.
"""

from shared.events import catalog, development, exchange, identity, metrics, platform, programme

__all__ = ["catalog", "development", "exchange", "identity", "metrics", "platform", "programme"]
