"""Test helpers shipped with the package: a scripted model and a stub OpenAI-compatible server."""
