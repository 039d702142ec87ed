#!/usr/bin/env python3
"""Reads a topic the way a Debezium consumer would: Confluent's own Python client
(confluent-kafka) with its schema-registry Avro deserializer, isolation.level=read_committed.

Prints one JSON object per record on stdout, in (partition, offset) order:
  {"partition": P, "offset": O, "key": ..., "value": ..., "headers": {name: text}}
Avro bytes print as {"$bytes": "<hex>"}, decimals as strings. Stops after --count records
(exit 0) or after --timeout seconds (exit 3, with what it read so far on stdout).

Used by tests/delivery/confluent_deserializer.rs; installed by scripts/build-deps into a virtualenv.
"""

import argparse
import datetime
import decimal
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def plain(v):
    """Avro values as JSON: bytes and decimals are not JSON types."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", required=True, help="Confluent-compatible registry URL")
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True, help="records to read")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds")
    p.add_argument("--key", choices=["avro", "string"], default="avro")
    args = p.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    avro = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"confluent-reader-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([args.topic])
    records = []
    deadline = time.monotonic() + args.timeout
    try:
        while len(records) < args.count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                # A topic not created yet is answered as an error; it may come.
                if msg.error().retriable() or "UNKNOWN_TOPIC" in msg.error().name():
                    continue
                raise KafkaException(msg.error())
            if args.key == "avro":
                key = avro(msg.key(), SerializationContext(msg.topic(), MessageField.KEY))
            else:
                key = None if msg.key() is None else msg.key().decode("utf-8")
            value = avro(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            headers = {k: (v or b"").decode("utf-8") for k, v in (msg.headers() or [])}
            records.append(
                {
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "key": plain(key),
                    "value": plain(value),
                    "headers": headers,
                }
            )
    finally:
        consumer.close()
    records.sort(key=lambda r: (r["partition"], r["offset"]))
    for r in records:
        print(json.dumps(r, sort_keys=True))
    if len(records) < args.count:
        print(
            f"read {len(records)} of {args.count} records from {args.topic} in {args.timeout} s",
            file=sys.stderr,
        )
        sys.exit(3)


if __name__ == "__main__":
    main()
