"""Scripts that mpiexec runs (``mpiexec -n 2 python ddp_steps.py``); the tests also import them."""
