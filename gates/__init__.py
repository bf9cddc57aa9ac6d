"""Promotion gates: policy, evaluation, reviews (hash-chained log) and registry write-back."""
