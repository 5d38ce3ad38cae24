"""mkdocs hooks (``hooks:`` in mkdocs.yml): generated parts of pages, built with the site."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- generated: settings -->"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tools.docs.settings_reference import markdown as generated

    return markdown.replace(MARKER, generated())
