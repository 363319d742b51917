"""Ollama built from its Go module, run as a local process: serves the small GGUF model the
Ollama extractor reads news with."""
