"""Sub-commands of the kaito-gitops CLI, one module each (see infra/cli.py)."""
