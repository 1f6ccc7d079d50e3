"""The `enclave` command line: one module per command group, each thin.

A command parses its options, calls the pipeline (or the workshop, or the server), and
prints text or --json. common.py defines the shared options (--data-dir, --json, --as, -k)
once; main.py is the root command and the map of where each command lives.

May import: enclave.config, enclave.pipeline, enclave.server, enclave.workshop.
"""

from enclave.cli.main import main

__all__ = ["main"]
