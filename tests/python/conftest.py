"""Keeps ``pytest tests/python`` (tests/python_client.rs) to the calculator tests.

The shared conformance suite under ``conformance/`` needs a lane chosen by environment
variables; ``scripts/python-conformance.sh`` runs it, and sets ``VGI_CONFORMANCE_ROLE``.
"""

import os

collect_ignore = [] if os.environ.get("VGI_CONFORMANCE_ROLE") else ["conformance"]
