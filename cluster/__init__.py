"""CLUSTER expansion strategies and deduplication."""
