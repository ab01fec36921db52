"""Data-sharing governance: what may leave the platform, for whom, in what form, and the record of it."""
