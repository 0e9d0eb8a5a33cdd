"""A Harbor API v2.0-compatible surface (/api/v2.0/…): a thin mapping onto the administration
and registry commands and the read-model views, so Harbor clients work against Portlog."""
