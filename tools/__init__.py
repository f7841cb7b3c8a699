"""Developer tools: the reference comparison behind tests/test_reference.py and docs/validation.md."""
