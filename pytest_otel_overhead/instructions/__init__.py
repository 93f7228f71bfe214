"""Instruction-count mode: pytest processes under valgrind, one per arm, and their parent."""
