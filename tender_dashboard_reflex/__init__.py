"""The operator's web dashboard. UI only: every decision and change goes through cleanup_core."""
