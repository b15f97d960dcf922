"""Parametric head models behind one interface: FLAME (user-supplied) and the built-in default head."""
