# Confluent's Python client (confluent-kafka with its schema-registry Avro deserializer), used by
# tests/delivery/confluent_deserializer.rs to read what the agent writes the way a Debezium consumer
# does. Sourced by scripts/build-deps (installs it) and scripts/test (points the tests at it).
CONFLUENT_KAFKA_VERSION=2.16.1
CONFLUENT_VENV=${CDC_CONFLUENT_VENV:-$HOME/.cache/cdc-agent/confluent-kafka-$CONFLUENT_KAFKA_VERSION}
