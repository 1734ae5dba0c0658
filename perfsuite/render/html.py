"""The one Jinja2 environment of perfsuite's pages and how a page is written."""

import math
from pathlib import Path

import jinja2

from perfsuite.results.writer import write_text


def size(value) -> str:
    """Bytes in binary units (``1.5 MiB``); ``—`` when unknown (the ``size`` filter of the templates)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    for unit in ("B", "KiB", "MiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024.0
    return f"{value:.1f} GiB"


def environment() -> jinja2.Environment:
    """The Jinja2 environment loading perfsuite's packaged templates (HTML autoescaped)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("perfsuite.render", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = size
    return env


def render(template: str, **context) -> str:
    """The page ``template`` rendered with ``context``."""
    return environment().get_template(template).render(**context)


def write_page(path: Path, template: str, **context) -> Path:
    """Render ``template`` into ``path`` atomically; returns the path."""
    write_text(path, render(template, **context))
    return Path(path)
