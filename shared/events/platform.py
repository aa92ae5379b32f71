"""Events about the platform itself, on `platform.lifecycle`."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from shared.envelope import Event
from shared.registry import event
from shared.topics import Topic
from shared.vocabulary import AgencyCode


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


@event
class ChannelsOpened(Event):
    """These agencies' channels exist and their ACLs are granted: readers may look."""

    event_type = "ChannelsOpened"
    schema_version = 1
    topic = Topic.PLATFORM_CHANNELS

    model_config = ConfigDict(json_schema_extra={"examples": [{"agencies": ["tax", "post"]}]})

    agencies: list[AgencyCode] = Field(
        min_length=1,
        max_length=10_000,
        description="Codes of the agencies whose channels were opened.",
    )
