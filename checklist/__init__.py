"""Migration plan, inventory and progress: the decision matrix and checklist as data (plan),
Databricks assets as records (assets), ordered classifier rules (rules), progress proven from the
store (evidence), manual status with history (manual), and the page's tables over time (progress)."""
