"""taichu-serve: turn one file of model code into a complete model-serving app.

This package is the generator (the `taichu_serve` command). The apps it generates
never import it: they carry their own runtime in taichu_runtime/.
"""

__version__ = "3.0.0"
