def test_build(snapshotted, evolving):
    import json
    for k, o in snapshotted.outcomes.items(): print(k, o.ok, o.mode, o.warnings, o.errors, json.dumps(o.counts))
    for k, o in evolving.steps.items(): print(k, getattr(o, "ok", None) if not isinstance(o, dict) else o["ok"], o if isinstance(o, dict) else (o.mode, o.warnings, o.errors, json.dumps(o.counts)))
