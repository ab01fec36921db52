"""Reference data every layer shares: the metric catalogue and the organisation hierarchy."""

from mutual.catalog.metrics import Catalog, Kind, Metric, load_catalog

__all__ = ["Catalog", "Kind", "Metric", "load_catalog"]
