"""Interop harness: the official A2A 1.x clients, each in an environment of its own (envs.py)."""
