"""The checklist's error type, on its own so that the plan loader and the classifier rules can both
raise it without importing each other."""


class PlanError(ValueError):
    """A plan file problem; the message names the file, the entry and the field."""
