"""Saved runs, the JSON document they share with the report, and comparing runs."""
