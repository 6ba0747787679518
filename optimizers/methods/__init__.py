"""One module per gradient-aggregation method, and nothing else: every module here defines ``METHODS`` (a tuple of
:class:`optimizers.Method`) and is registered by ``optimizers.built_in()``. What methods are built from lives
beside this folder (``optimizers/base.py``, ``shared.py``, ``linalg.py``, ``solvers.py``, ``rng.py``); a method
module imports those, never another method module.
"""
