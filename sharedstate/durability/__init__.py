"""Durability: snapshots of a namespace on the volume, verified restores, legacy files."""
