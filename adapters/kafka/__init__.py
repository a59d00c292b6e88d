"""Kafka: the outbound relay, inbound ingestion and scale-out projections (aiokafka)."""
