"""Ingest: read the files trusts send, map them to catalogue metrics, check every value, quarantine what is wrong.

Readers stage a file's cells into a DuckDB staging connection; ``rules`` checks them there in bulk.
This layer knows the catalogue and the staging tables; it never imports the store.
"""
