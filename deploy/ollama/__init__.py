"""Ollama built from its Go module, serving a small GGUF model, run as a local process."""
