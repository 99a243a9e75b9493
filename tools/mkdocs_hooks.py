"""MkDocs hooks: the pages that must not drift from the code are generated at build time.

- `<!-- settings -->` becomes the table of every setting (`rag.config.Settings`): variable,
  default, meaning.
- `reference.md` is generated from the service's own OpenAPI document (no file on disk).
- `{{ bench FILE PATH }}` becomes the figure at PATH (keys joined by `/`) of
  `bench/results/FILE`: figures are read, not typed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"\{\{\s*bench\s+(\S+)\s+(\S+)\s*\}\}")


def result(file: str, path: str):
    """The value at PATH (keys and list positions joined by `/`) of `bench/results/FILE`."""
    value = json.loads((ROOT / "bench" / "results" / file).read_text())
    for key in path.split("/"):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def figure(file: str, path: str) -> str:
    value = result(file, path)
    return f"{value:,}" if isinstance(value, int) else str(value)


def settings_table() -> str:
    from rag.config import Settings

    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else json.dumps(default, default=str)
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `RAG_{name.upper()}` | `{shown}` | {meaning} |")
    return "\n".join(rows)


def api_reference() -> str:
    from api.app import create_app
    from rag.config import Settings

    schema = create_app(settings=Settings()).openapi()
    lines = [
        "# API reference",
        "",
        "Generated from the service's own OpenAPI document (`/openapi.json`, also served as",
        "`/docs`): every operation, its parameters and every status it can answer with.",
        "",
    ]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines += [f"## `{method.upper()} {path}`", ""]
            if summary := operation.get("summary"):
                lines += [summary, ""]
            if description := operation.get("description"):
                lines += [description.strip(), ""]
            for parameter in operation.get("parameters", []):
                where, name = parameter["in"], parameter["name"]
                text = parameter.get("description", "")
                required = " (required)" if parameter.get("required") else ""
                lines.append(f"- {where} `{name}`{required}: {text}".rstrip(": "))
            if body := operation.get("requestBody"):
                kinds = ", ".join(f"`{k}`" for k in body.get("content", {}))
                lines.append(f"- body: {kinds}")
            statuses = ", ".join(
                f"{code} ({response.get('description', '')})"
                for code, response in operation.get("responses", {}).items()
            )
            lines += [f"- answers: {statuses}", ""]
    return "\n".join(lines) + "\n"


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "reference.md", content=api_reference()))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = markdown.replace("<!-- settings -->", settings_table())
    return FIGURE.sub(lambda m: figure(m.group(1), m.group(2)), markdown)
