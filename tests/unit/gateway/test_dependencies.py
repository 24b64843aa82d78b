"""The gateway stays light: it never imports torch or sentence-transformers."""

from __future__ import annotations

import subprocess
import sys


def test_gateway_does_not_import_torch():
    """Importing the gateway's entry point and modules leaves torch unloaded."""
    code = (
        "import sys, ponder_gateway.__main__, ponder_gateway.service, ponder_runtime;"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'sentence_transformers', 'transformers', 'numpy'});"
        "print(','.join(heavy)); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"gateway imported: {done.stdout} {done.stderr}"
