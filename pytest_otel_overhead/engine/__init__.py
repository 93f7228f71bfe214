"""The measuring engine: arms, paired blocks, looks at the data, and probes of the process."""
