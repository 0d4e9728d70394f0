"""Differential test: the same seeded random Placement traffic sent to
upstream OpenStack Placement and to Ferrite's, answers compared.

See scripts/differential/DIFFERENCES.md and `placement-differential --help`.
"""
