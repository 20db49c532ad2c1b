"""The field standards: YAML data, not code (see README.md in this folder)."""
