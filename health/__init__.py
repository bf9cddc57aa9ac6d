"""Endpoint health: metric series and the red/amber/green status of every deployment, from store rows."""
