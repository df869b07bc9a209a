"""The messaging core: topology, publishing, outbox relay, and the one consumer pipeline."""
