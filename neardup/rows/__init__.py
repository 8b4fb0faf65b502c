"""What a claimed work row of each phase does, apart from any broker.

The Dramatiq actors (`actors/`) wrap these in tickets; the CLI runs the rows of a rescan or a small
folder itself (neardup.inline) without importing Dramatiq at all.
"""
