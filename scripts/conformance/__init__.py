"""Conformance harness: upstream OpenStack Placement gabbi tests vs. Ferrite.

Entry point: ``scripts/placement-conformance`` (see NOTES.md here).
"""
