"""Enclave: a self-hosted, privacy-first knowledge assistant."""

__version__ = "0.1.0"
