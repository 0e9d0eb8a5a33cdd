"""Backing services (S3, ...) started as private processes on loopback ports, for tests and local runs."""
