"""Exporters: models written back to the formats Tweed reads (docs/combination.md)."""
