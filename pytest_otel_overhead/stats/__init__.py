"""Statistics of paired measurements and the verdicts decided from their intervals."""
