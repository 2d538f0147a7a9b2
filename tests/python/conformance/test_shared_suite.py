"""The reference's shared conformance suite (vgi-rpc 0.52.2), imported unchanged.

Which client and which server it exercises is decided by ``conftest.py`` in this
directory; what is excluded, and why, by ``exclusions.py``.
"""

from vgi_rpc.conformance._pytest_suite import *  # noqa: F403
