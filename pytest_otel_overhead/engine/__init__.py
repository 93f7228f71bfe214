"""The measuring engine: the arms, the timed pairs and their looks, the diagnostic and heap rounds, and probes.

``runner.measure`` runs the phases in order; each phase is a module of its own.
"""
