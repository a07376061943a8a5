"""IDHub connector plugin for AWS IAM: provisions and reconciles IAM users, groups and managed
policies. Loaded by the host through the ``idhub`` entry point (see plugin.py)."""
