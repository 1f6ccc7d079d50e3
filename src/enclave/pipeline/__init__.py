"""The assistant's pipeline: everything between a user's files and a cited answer.

Ingest: loaders -> chunking -> embedding -> store (ingest.py runs it, one transaction per file).
Ask: access filter (store.viewer) -> retrieval (dense + keyword, fused) -> reranking ->
prompting -> llm -> answering (citations). wiring.py builds these parts from Settings.

May import: enclave.config and third-party libraries. Never imports enclave.server,
enclave.cli or enclave.workshop: they build on the pipeline, not the other way round.
"""
