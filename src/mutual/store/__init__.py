"""The single source of truth: every value trusts sent, with its history and lineage, behind one interface."""
