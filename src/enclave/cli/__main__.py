"""`python -m enclave.cli`."""

from enclave.cli.main import main

main()
