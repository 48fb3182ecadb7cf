"""Demo data: a realistic, deterministic data set in the import formats (FORMATS.md)."""
