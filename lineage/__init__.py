"""Lineage: the typed graph of tables, runs, commits, models, aliases and endpoints, and the trace
(upstream) and impact (downstream) questions asked of it. See DESIGN.md "Vocabulary of the lineage graph"."""
