"""The one Jinja2 environment of perfsuite's pages and how a page is written."""

from pathlib import Path

import jinja2

from perfsuite.results.writer import write_text


def environment() -> jinja2.Environment:
    """The Jinja2 environment loading perfsuite's packaged templates (HTML autoescaped)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("perfsuite.render", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context) -> str:
    """The page ``template`` rendered with ``context``."""
    return environment().get_template(template).render(**context)


def write_page(path: Path, template: str, **context) -> Path:
    """Render ``template`` into ``path`` atomically; returns the path."""
    write_text(path, render(template, **context))
    return Path(path)
