"""Validation cases with published reference values, and their runner.

cases            the problems: geometry, optics, photons, checked quantities, references,
                 tolerances and sources (data)
comparison       measuring a quantity from a run, and the pass rule
adding_doubling  slab totals from iadpython, from which the stored adding-doubling values come
runner           runs cases on a backend and prints the table (``photonqd validate``)
"""
