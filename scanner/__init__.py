"""Portlog's built-in vulnerability scanner: a program of its own that follows the Harbor
Scanner Adapter spec (goharbor/pluggable-scanner-spec) and is reached over HTTP like any
external adapter (`adapter_app.py`, mounted at `/scanner`).

It imports nothing of Portlog. `layers.py` reads an image's layers from a registry without
extracting them, `inventory.py` lists the packages installed, `vulndb.py` matches them against
OSV records, `reports.py` writes Harbor's vulnerability report and the CycloneDX SBOM.
"""
