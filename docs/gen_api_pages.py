"""Write docs/api/<package>.md, one page per sub-package listing every module for mkdocstrings.

Run from the repository root after adding a module: ``python docs/gen_api_pages.py``
(tests/test_docs.py fails, naming the module, until the reference covers it).
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TITLES = {"storage": "Storage", "rna": "RNA structure", "em": "Maps and quality", "samples": "Samples",
          "inputs": "Inputs", "pipeline": "The build pipeline", "split": "Splitting", "features": "Sequence features", "learn": "Learning", "release": "Releasing",
          "testing": "Test fixtures", "common": "Common helpers", "cli": "The rnamotif command"}


def main() -> None:
    for package, title in TITLES.items():
        modules = sorted(m.name for m in pkgutil.iter_modules([str(ROOT / "rnamotif_data" / package)]))
        lines = [f"# {title}: `rnamotif_data.{package}`", "", f"::: rnamotif_data.{package}", "    options:",
                 "      members: false", ""]
        for module in modules:
            lines += [f"## `rnamotif_data.{package}.{module}`", "", f"::: rnamotif_data.{package}.{module}",
                      "    options:", "      show_root_heading: false", "      heading_level: 3", ""]
        (ROOT / "docs" / "api" / f"{package}.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
