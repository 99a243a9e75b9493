"""The `rag` command: ingest, ask, search, serve, and index upkeep."""

from __future__ import annotations

import functools
import json
import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from rag.config import Settings
from rag.errors import RagError, SetupError
from rag.index.backends import location, open_backend
from rag.ingest.documents import load_paths
from rag.service import RagService

app = typer.Typer(
    help="Question answering over news articles, with verifiable citations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ModeOption = Annotated[
    str | None,
    typer.Option(help="extractive or generative (default: $RAG_ANSWER_MODE, else extractive)."),
]
index_app = typer.Typer(help="Check or rebuild an index on disk.", no_args_is_help=True)
app.add_typer(index_app, name="index")

IndexOption = Annotated[
    Path | None,
    typer.Option("--index", help="Index folder (default: $RAG_INDEX_DIR or index/default)."),
]


def reporting(command: Callable) -> Callable:
    """A command whose RagError ends it with the error's message and exit code (2: fix the
    input or setup; 1: something else), never a stack trace."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RagError as error:
            say(f"error: {error}")
            raise typer.Exit(error.exit_code) from None
        except ValidationError as error:  # the settings (RAG_* variables, .env) are wrong
            say(f"error: invalid settings: {settings_problems(error)}")
            raise typer.Exit(2) from None

    return run


def settings_problems(error: ValidationError) -> str:
    """Each wrong setting as the variable to fix and why ("RAG_PORT: Input should be…")."""
    return "; ".join(
        f"RAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
        if e["loc"]
        else e["msg"].removeprefix("Value error, ")
        for e in error.errors()
    )


def command(typer_app: typer.Typer, *args, **kwargs) -> Callable[[Callable], Callable]:
    return lambda function: typer_app.command(*args, **kwargs)(reporting(function))


def settings_for(index: Path | None, **overrides) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if index is not None:
        values["index_dir"] = index
    return Settings(**values)


def say(message: str) -> None:
    typer.echo(message, err=True)


def open_service(settings: Settings, create: bool = False) -> RagService:
    """The service over its index. Only `create` (the server, which indexes the configured
    sources) makes a missing one: a mistyped --index must not become a new index."""
    if not create and open_backend(settings).head() is None:
        where = location(settings)
        flag = "" if settings.database_url else f" --index {where}"
        raise SetupError(
            f"no index at {where}: `rag ingest{flag} PATH…` creates one from files, "
            f"`rag index rebuild{flag}` builds it from the configured sources"
        )
    return RagService.open(settings, progress=say)


@command(app)
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders (.txt .md .html .json .jsonl).")
    ],
    index: IndexOption = None,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Read, cut and embed on a Ray cluster (an address, `auto`, or `local` to "
            "start one here) and write to PostgreSQL (RAG_DATABASE_URL) in batches."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Ray workers that embed (with --ray).")] = 2,
) -> None:
    """Add or replace documents in the index (unchanged text is not embedded again)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        say(f"error: no such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)
    if ray is not None:
        from rag.ingest.distributed import ingest_with_ray

        settings = settings_for(index)
        done = ingest_with_ray(paths, settings, ray, workers, progress=say)
        for problem in done.problems:
            say(f"skipped: {problem}")
        say(
            f"indexed {done.documents} documents in {done.seconds:.1f} s with {done.workers} "
            f"Ray workers ({done.documents_per_second:.1f} documents/s) into "
            f"{location(settings)}"
        )
        raise typer.Exit(1 if done.problems else 0)
    report = load_paths(paths)
    for problem in report.problems:
        say(f"skipped: {problem}")
    if not report.documents:
        say("error: no documents to ingest")
        raise typer.Exit(2)
    service = RagService(settings_for(index))
    built = service.ingest(report.documents, progress=say)
    say(
        f"indexed {len(report.documents)} documents; the index now holds "
        f"{built.manifest.documents} documents, {built.manifest.chunks} chunks "
        f"in {location(service.settings)}"
    )
    if report.problems:
        raise typer.Exit(1)


@command(app)
def delete(
    doc_ids: Annotated[list[str], typer.Argument(help="Ids of the documents to remove.")],
    index: IndexOption = None,
) -> None:
    """Remove documents from the index."""
    service = RagService(settings_for(index))
    built = service.delete(doc_ids)
    say(f"deleted {len(doc_ids)}; the index now holds {built.manifest.documents} documents")


@command(app)
def ask(
    question: str,
    index: IndexOption = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON response.")] = False,
    mode: ModeOption = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Abstain below this confidence (default: calibrated)."),
    ] = None,
) -> None:
    """Answer a question from the index, with citations."""
    service = open_service(settings_for(index))
    result = service.ask(question, top_k, mode=mode, min_confidence=min_confidence)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    if not result.answerable:
        typer.echo(f"(no answer) {result.message} [confidence {result.confidence:.2f}]")
        for n, passage in enumerate(result.passages, 1):
            text = textwrap.shorten(passage.text, 160, placeholder=" …")
            typer.echo(f"  [{n}] {passage.doc_id} {passage.start}-{passage.end}: {text}")
        return
    if result.mode_reason:
        say(f"answered extractively: {result.mode_reason}")
    typer.echo(f"{result.answer}  [confidence {result.confidence:.2f}, {result.mode}]")
    for c in result.citations:
        typer.echo(f"  [{c.n}] {c.doc_id} {c.start}-{c.end}: {c.quote}")


@command(app)
def search(
    query: str,
    index: IndexOption = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k")] = None,
) -> None:
    """Ranked passages for a query, as JSON lines."""
    service = open_service(settings_for(index))
    found = service.search(query, top_k)
    for passage in found:
        typer.echo(json.dumps(asdict(passage), ensure_ascii=False))


@command(app, "eval")
def evaluate_golden(
    golden: Annotated[Path, typer.Argument(help="Golden set, JSON lines.")] = Path(
        "seeds/golden.jsonl"
    ),
    corpus: Annotated[
        Path, typer.Option(help="Articles the golden set asks about, indexed afresh.")
    ] = Path("seeds/articles"),
    index: Annotated[
        Path | None,
        typer.Option(
            "--index",
            help="Score this existing index instead of a fresh one (with RAG_DATABASE_URL: "
            "the database's index).",
        ),
    ] = None,
    thresholds: Annotated[
        Path,
        typer.Option(
            help="TOML file with a \\[thresholds] table (floors: a run below one fails) and a "
            "\\[targets] one (reported)."
        ),
    ] = Path("seeds/eval-thresholds.toml"),
    out: Annotated[
        Path | None, typer.Option(help="Folder for eval.json and eval.md (default: none).")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    mode: ModeOption = None,
) -> None:
    """Score the service on a golden Q&A set; exits 1 when a metric misses its threshold.

    By default the corpus is indexed in a temporary folder, so the score does not depend on
    what else a user's index holds, and nothing in the repository is written."""
    import tempfile

    from tqdm import tqdm

    from rag import evaluation

    try:
        items = evaluation.load_golden(golden)
        limits = evaluation.load_thresholds(thresholds)
        targets = evaluation.load_thresholds(thresholds, "targets")
    except (OSError, ValueError) as error:
        say(f"error: {error}")
        raise typer.Exit(2) from None
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as scratch:
        if index is None:
            if not corpus.exists():
                say(f"error: no such corpus: {corpus}")
                raise typer.Exit(2)
            # always the embedded store: a fresh corpus must not be written into a shared
            # database (RAG_DATABASE_URL); `--index` scores the database's index
            settings = settings_for(Path(scratch) / "index", sources=[corpus]).model_copy(
                update={"database_url": None, "database_read_url": None}
            )
            service = RagService(settings)
            service.sync_sources(progress=say)
        else:
            service = open_service(settings_for(index))
        summary, results = evaluation.evaluate(
            service,
            items,
            top_k,
            progress=lambda it: tqdm(it, desc="eval", unit="q", file=sys.stderr),
            mode=mode,
        )
    for metric, value in summary.items():
        typer.echo(f"{metric:>22}  {value}")
    for r in results:
        if (r.answerable and not r.correct) or (not r.answerable and not r.abstained):
            say(f"miss {r.id}: {r.question!r} -> {r.predicted!r} (confidence {r.confidence})")
    if out is not None:
        json_path, md_path = evaluation.write_reports(out, summary, results)
        say(f"reports: {json_path} {md_path}")
    for line in evaluation.failures(summary, targets):  # reported: how far from right
        say(f"short of target: {line}")
    failed = evaluation.failures(summary, limits)
    for line in failed:
        say(f"below threshold: {line}")
    if failed:
        raise typer.Exit(1)


@command(index_app, "verify")
def verify(index: IndexOption = None) -> None:
    """Check the index: every file against the manifest's checksums (embedded), the BM25
    statistics against the rows they count (PostgreSQL)."""
    settings = settings_for(index)
    root = location(settings)
    try:
        problems = open_backend(settings).verify()
    except RagError as error:
        problems = [str(error)]
    if problems:
        for problem in problems:
            say(f"problem: {problem}")
        say(f"run `rag index rebuild --index {root}` to rebuild it")
        raise typer.Exit(1)
    typer.echo(f"{root}: ok")


@command(index_app, "rebuild")
def rebuild(index: IndexOption = None) -> None:
    """Rebuild the index from its documents and the configured sources, without trusting its
    vectors or postings: documents added through the API or `rag ingest` are kept when their
    text can still be read (the source files win for their own documents)."""
    settings = settings_for(index)
    service = RagService(settings)
    service.sync_sources(progress=say, force=True)
    typer.echo(
        f"rebuilt {location(settings)}: {service.current().index.manifest.documents} documents"
    )


@command(app)
def pg(
    port: Annotated[int, typer.Option()] = 5433,
    data: Annotated[Path, typer.Option(help="The database's files.")] = Path("index/pg"),
) -> None:
    """Run a local PostgreSQL with pgvector on 127.0.0.1 (development, tests), in the
    foreground: then run the service with RAG_DATABASE_URL=postgresql://rag@127.0.0.1:PORT/rag."""
    from rag.index import pg_local

    server = pg_local.start(data, port, foreground=True)
    say(f"PostgreSQL on {pg_local.url(port)} (data in {data}); Ctrl-C stops it")
    try:
        server.wait()
    except KeyboardInterrupt:
        pg_local.stop(server)


@command(app)
def llm(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8011,
    models: Annotated[
        Path | None, typer.Option(help="Where the joined model file is kept.")
    ] = None,
) -> None:
    """Serve the local language model (joined from its PyPI parts, checked) for generated
    answers: then run the service with RAG_LLM_BASE_URL=http://HOST:PORT/v1."""
    from rag.models.local_llm import assemble, serve_command

    model = assemble(models or Settings().model_cache_dir)
    command = serve_command(model, host, port)
    say(f"serving {model.name} on http://{host}:{port}/v1")
    os.execv(command[0], command)


def main() -> None:
    sys.exit(app())


if __name__ == "__main__":
    main()
