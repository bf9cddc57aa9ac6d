"""The embedded demo workspace (two real MLflow stores + snapshots); see demo/build.py."""
