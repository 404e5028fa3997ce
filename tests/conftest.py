import os

# Notebooks run in parallel workers on small machines: one OpenMP thread each is much faster than oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
for _b in ("JAX", "TENSORFLOW", "CUPY"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_b}", "1")
# jupyter_core warns on every import that it will move its config paths to platformdirs: opt in now (nothing of ours
# lives in those paths), which also silences the DeprecationWarning in every test that starts a kernel.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
# The official WKD cost matrices are not part of the project. Where a copy lies beside the checkout (a development
# machine), point the notebooks' optional checks at it; elsewhere those checks skip.
_official = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "cost_matrices")
if os.path.isdir(_official):
    os.environ.setdefault("WKD_OFFICIAL_COSTS", os.path.abspath(_official))
