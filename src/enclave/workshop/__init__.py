"""The model workshop: adapt and measure the models on the organisation's own text.

evaluation.py (retrieval and QA metrics on BEIR/SQuAD data), training_data.py and tuning.py
(pairs, bi-encoder and cross-encoder tuning), classifier.py (text classifiers), lora.py and
gguf_export.py (LoRA tuning of a small LLM, GGUF export), runs.py (run folders, seeds, plots).

May import: enclave.config and enclave.pipeline. Never imports enclave.server or enclave.cli.
"""
