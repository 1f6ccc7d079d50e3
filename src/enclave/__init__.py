"""Enclave: a self-hosted, privacy-first knowledge assistant.

pipeline/ (ingest and answer), server/ (HTTP API and web UI), workshop/ (tune and measure
the models) and cli/ (the `enclave` command); docs/ARCHITECTURE.md has the map.
"""

__version__ = "0.1.0"
