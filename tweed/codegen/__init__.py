"""Code generation: packing the fused IR into flat arrays (pack.py) and backends that evaluate
them (numba_backend.py: generic cached numba kernels; value, exact gradient and Hessian)."""
