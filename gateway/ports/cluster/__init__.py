"""The NATS JetStream cluster: a second source of sequenced events (docs/cluster.md)."""
