"""From a verdict to advice: sweeps, the auto-tuner and the cost breakdown (explain)."""
