"""The Jupyter server extension (``/sci/health``, ``/sci/metrics``, ``/sci/api/status``).

It lands with its own issue; kernels and the server will meet in ``core.state_dir``.
"""
