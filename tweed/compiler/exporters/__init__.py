"""Exporters: IR -> spec formats (HistFactory JSON, HS3 JSON, simplified JSON)."""
