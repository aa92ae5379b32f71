"""The local Kafka's layout: one node as it always was, or three voters of one quorum whose
every topic, the brokers' own included, is on three replicas with two in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.platform import LocalPlatform, PlatformError, Ports
from infra.platform.kafka import KafkaCluster
from shared.topics import Durability


def test_one_broker_keeps_the_single_nodes_names_and_one_replica(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path, 9092, 9093)
    (node,) = cluster.nodes
    assert (node.name, node.data_dir, node.config_file.name) == (
        "kafka",
        tmp_path / "kafka",
        "kafka.properties",
    )
    assert cluster.bootstrap == "127.0.0.1:9092"
    assert cluster.durability == Durability(1, 1)


def test_three_brokers_are_three_voters_of_one_quorum_on_consecutive_ports(
    tmp_path: Path,
) -> None:
    cluster = KafkaCluster(tmp_path, 9092, 9093, size=3)
    assert [(n.node_id, n.port, n.controller_port) for n in cluster.nodes] == [
        (1, 9092, 9093),
        (2, 9094, 9095),
        (3, 9096, 9097),
    ]
    assert [n.name for n in cluster.nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert cluster.durability == Durability(3, 2)
    voters = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    for node in cluster.nodes:
        properties = node.properties()
        assert properties["node.id"] == str(node.node_id)
        assert properties["controller.quorum.voters"] == voters
        assert properties["log.dirs"] == str(tmp_path / node.name)
        for key in (
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
        ):
            assert properties[key] == "3", key
        assert properties["min.insync.replicas"] == "2"
        assert properties["transaction.state.log.min.isr"] == "2"


def test_a_home_keeps_the_number_of_brokers_it_was_made_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PANJEREH_KAFKA_BROKERS", raising=False)
    ports = Ports(kafka=9092, kafka_controller=9093)
    made = LocalPlatform(tmp_path, ports, brokers=3)
    made._same_brokers_as_before()
    assert LocalPlatform(tmp_path, ports).kafka.size == 3  # unsaid: what it was made with
    with pytest.raises(PlatformError, match="has 3 broker"):
        LocalPlatform(tmp_path, ports, brokers=1)._same_brokers_as_before()
    assert LocalPlatform(tmp_path, ports).env()["PANJEREH_KAFKA_MIN_INSYNC_REPLICAS"] == "2"


def test_a_broker_has_no_listener_without_authentication_unless_a_benchmark_measures(
    tmp_path: Path,
) -> None:
    (node,) = KafkaCluster(tmp_path, 9092, 9093).nodes
    properties = node.properties()
    assert properties["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SSL"
    assert properties["super.users"] == "User:admin"
    assert "PLAINTEXT" not in "".join(properties.values())

    (measured,) = KafkaCluster(tmp_path, 9092, 9093, measuring_port=9098).nodes
    properties = measured.properties()
    assert properties["listeners"].endswith(",MEASURING://127.0.0.1:9098")
    assert properties["advertised.listeners"].endswith(",MEASURING://127.0.0.1:9098")
    assert properties["listener.security.protocol.map"].endswith(",MEASURING:PLAINTEXT")
    assert properties["super.users"] == "User:admin;User:ANONYMOUS"


def test_only_a_single_broker_may_have_a_measuring_listener(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single broker"):
        KafkaCluster(tmp_path, 9092, 9093, size=3, measuring_port=9098)
