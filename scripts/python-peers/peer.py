"""A Confluent-serdes peer for kafkit-events' interop suite (tests/suites/events_peers.rs).

confluent-kafka's own AvroSerializer / JSONSerializer / AvroDeserializer against a real broker
and registry, so kafkit's bytes are checked against another implementation both ways.

  peer.py produce-avro  BOOTSTRAP REGISTRY_URL TOPIC N
  peer.py produce-json  BOOTSTRAP REGISTRY_URL TOPIC N
  peer.py consume-avro  BOOTSTRAP REGISTRY_URL TOPIC N    (prints one JSON object per record)

Records: key "peer-<i>", value {"id": "peer-<i>", "amount": i * 10, "note": "from python"}.
Every wait has a deadline (60 s), every registry request a timeout (10 s, retried by the
client); exits non-zero on any failure.
"""
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

AVRO_SCHEMA = json.dumps({
    "type": "record",
    "name": "PeerPayment",
    "namespace": "kafkit.peers",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "long"},
        {"name": "note", "type": "string"},
    ],
})

JSON_SCHEMA = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "PeerPayment",
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "amount": {"type": "integer"},
        "note": {"type": "string"},
    },
    "required": ["id", "amount", "note"],
})

DEADLINE = 60.0
# confluent-kafka's registry client waits forever for an answer unless given a timeout (httpx's
# `timeout=None`); a request a loaded registry never answered held one CI run for 30 minutes.
REGISTRY_TIMEOUT_S = 10


def registry_client(registry_url):
    return SchemaRegistryClient({"url": registry_url, "timeout": REGISTRY_TIMEOUT_S})


def record(i):
    return {"id": f"peer-{i}", "amount": i * 10, "note": "from python"}


def produce(bootstrap, registry_url, topic, n, serializer):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    for i in range(n):
        value = serializer(record(i), SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, key=f"peer-{i}".encode(), value=value, on_delivery=delivered)
    left = producer.flush(DEADLINE)
    if left or errors:
        sys.exit(f"produce failed: {left} undelivered, errors {errors}")


def where(consumer, topic):
    """The consumer's position and the partition's log range, for a failure message."""
    partition = TopicPartition(topic, 0)
    try:
        low, high = consumer.get_watermark_offsets(partition, timeout=5)
        position = consumer.position([partition])[0].offset
        return f"position {position}, log {low}..{high}"
    except Exception as e:  # a diagnostic must not hide the failure it describes
        return f"position unknown: {e}"


def consume_avro(bootstrap, registry_url, topic, n):
    registry = registry_client(registry_url)
    deserializer = AvroDeserializer(registry)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"python-peer-{topic}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    # Assigned, not subscribed: no group rebalance to wait for.
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    deadline = time.monotonic() + DEADLINE
    try:
        while got < n:
            if time.monotonic() > deadline:
                sys.exit(f"consumed {got} of {n} records before the deadline "
                         f"({where(consumer, topic)})")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                sys.exit(f"consume error: {msg.error()}")
            value = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
            print(json.dumps({"key": msg.key().decode() if msg.key() else None, "value": value}),
                  flush=True)
            got += 1
    finally:
        consumer.close()


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    command, bootstrap, registry_url, topic, n = sys.argv[1:]
    n = int(n)
    registry = registry_client(registry_url)
    if command == "produce-avro":
        produce(bootstrap, registry_url, topic, n, AvroSerializer(registry, AVRO_SCHEMA))
    elif command == "produce-json":
        produce(bootstrap, registry_url, topic, n, JSONSerializer(JSON_SCHEMA, registry))
    elif command == "consume-avro":
        consume_avro(bootstrap, registry_url, topic, n)
    else:
        sys.exit(f"unknown command {command}\n{__doc__}")


if __name__ == "__main__":
    main()
