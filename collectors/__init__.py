"""Collectors: one module per source kind, each a typed config + a record generator + a report."""
