"""Events about the platform itself, on `platform.lifecycle`."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from shared.envelope import Event
from shared.registry import event
from shared.topics import Topic


@event
class ServiceStarted(Event):
    """A service process started and is ready to work."""

    event_type = "ServiceStarted"
    schema_version = 1
    topic = Topic.PLATFORM_LIFECYCLE

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"service": "identity", "release": "0.1.0", "instance": "host-1:4242"}]
        }
    )

    service: str = Field(min_length=1)
    release: str = Field(min_length=1, description="The release of the software running.")
    instance: str = Field(min_length=1, description="Host and process id of the instance.")
