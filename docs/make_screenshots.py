"""Regenerate the README's screenshots of the MLflow UI::

    python docs/make_screenshots.py

The browser tests (tests/test_ui.py) take them, each at the moment its checks passed, so every
number in a picture is one the tests computed by hand. Needs chromium and chromium-driver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SCREENSHOTS = ("trace-list-cost-column.png", "trace-span-costs.png", "usage-overview-cost.png")


def main() -> int:
    started = time.time()
    env = {**os.environ, "GENAI_TRACING_SCREENSHOTS": str(DOCS)}
    code = subprocess.call([sys.executable, "-m", "pytest", "tests/test_ui.py", "-m", "browser",
                            "-q", "-rs"], cwd=DOCS.parent, env=env)
    stale = [name for name in SCREENSHOTS
             if not (DOCS / name).exists() or (DOCS / name).stat().st_mtime < started]
    if code or stale:
        print(f"screenshots not (all) made: pytest exit code {code}, missing {stale}",
              file=sys.stderr)
        return code or 1
    print("\n".join(f"wrote docs/{name}" for name in SCREENSHOTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
