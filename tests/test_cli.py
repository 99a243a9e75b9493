"""The `rag` command, in-process (sharing the loaded model) and as a real served process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from rag.cli import app
from rag.config import Settings
from rag.service import RagService
from tests.conftest import (
    EXAMPLE_QUESTION,
    ROOT,
    SEED_DIR,
    assert_citations_verify,
    free_port,
    wait_until_healthy,
)

runner = CliRunner()


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    index = tmp_path / "index"
    monkeypatch.setenv("RAG_INDEX_DIR", str(index))
    monkeypatch.setenv("RAG_SOURCES", json.dumps([str(SEED_DIR)]))
    return index


def test_reading_commands_never_create_an_index(env: Path, tmp_path: Path) -> None:
    typo = tmp_path / "indx"
    for command in (["ask", EXAMPLE_QUESTION, "--index", str(typo)], ["search", "cars"]):
        refused = runner.invoke(app, command)
        assert refused.exit_code == 2 and "no index at" in refused.stderr
        assert "rag index rebuild" in refused.stderr
    assert not typo.exists() and not env.exists()


def test_ask_json_answers_once_the_index_is_built(env: Path) -> None:
    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
    result = runner.invoke(app, ["ask", EXAMPLE_QUESTION, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["answer"] == "2023"
    text = (SEED_DIR / "xiaomi-great-wall-electric-car.txt").read_text(encoding="utf-8")
    assert_citations_verify(body["citations"], {"xiaomi-great-wall-electric-car": text})
    assert (env / "CURRENT").is_file()


def test_ask_plain_and_abstain(env: Path) -> None:
    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
    answered = runner.invoke(app, ["ask", EXAMPLE_QUESTION])
    assert answered.exit_code == 0 and answered.stdout.startswith("2023")
    assert "[1] xiaomi-great-wall-electric-car" in answered.stdout
    abstained = runner.invoke(app, ["ask", "What is the price of the car?"])
    assert abstained.exit_code == 0 and abstained.stdout.startswith("(no answer)")
    stricter = runner.invoke(app, ["ask", EXAMPLE_QUESTION, "--min-confidence", "0.99"])
    assert stricter.exit_code == 0 and stricter.stdout.startswith("(no answer)")
    out_of_range = runner.invoke(app, ["ask", EXAMPLE_QUESTION, "--min-confidence", "2"])
    assert out_of_range.exit_code == 2 and "min-confidence" in out_of_range.stderr
    empty = runner.invoke(app, ["ask", "  "])
    assert empty.exit_code == 2 and "question is empty" in empty.stderr


def test_ingest_adds_documents_and_reports_bad_files(env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "tesla.txt").write_text(
        "Tesla opens a factory in Berlin.\n\nIt cost 4 billion euros."
    )
    (folder / "bad.json").write_text("{oops")
    result = runner.invoke(app, ["ingest", str(SEED_DIR), str(folder), "--index", str(env)])
    assert result.exit_code == 1  # something was skipped, and the run says so
    assert "skipped: bad.json: malformed JSON" in result.stderr
    assert "the index now holds 2 documents" in result.stderr
    found = runner.invoke(app, ["search", "factory in Berlin", "-k", "1"])
    assert json.loads(found.stdout.splitlines()[0])["doc_id"] == "tesla"
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_index_verify_and_rebuild(env: Path) -> None:
    assert runner.invoke(app, ["index", "verify"]).exit_code == 1  # nothing built yet
    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
    verified = runner.invoke(app, ["index", "verify"])
    assert verified.exit_code == 0 and verified.stdout.strip().endswith("ok")


def test_rag_serve_answers_over_real_http(env: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base)
        body = httpx.post(f"{base}/ask", json={"question": EXAMPLE_QUESTION}, timeout=30).json()
        assert body["answer"] == "2023"
        doc = httpx.get(f"{base}/documents/{body['citations'][0]['doc_id']}", timeout=5).json()
        assert_citations_verify(body["citations"], {doc["doc_id"]: doc["text"]})
        assert httpx.post(f"{base}/ask", json={"question": ""}, timeout=5).status_code == 422
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_server_serves_what_the_shell_ingests(tmp_path: Path, embedder) -> None:
    settings = Settings(index_dir=tmp_path / "index", sources=[SEED_DIR], watch_seconds=0.2)
    with TestClient(create_app(RagService.open(settings, embedder))) as client:
        assert client.get("/health").json()["documents"] == 1
        article = tmp_path / "tesla.txt"
        article.write_text("Tesla opens a factory in Berlin.\n\nIt cost 4 billion euros.")
        ingested = runner.invoke(app, ["ingest", str(article), "--index", str(settings.index_dir)])
        assert ingested.exit_code == 0, ingested.output
        deadline = time.monotonic() + 60  # a bound for a busy machine; it takes ~0.2 s
        while client.get("/health").json()["documents"] != 2:
            assert time.monotonic() < deadline, "the server never picked up the new commit"
            time.sleep(0.1)
        answer = client.post("/ask", json={"question": "Where did Tesla open a factory?"})
        assert answer.json()["answer"] == "Berlin"


def test_a_rebuild_keeps_what_was_ingested_even_from_a_damaged_index(
    env: Path, tmp_path: Path
) -> None:
    from rag.index import store

    article = tmp_path / "tesla.txt"
    article.write_text("Tesla opens a factory in Berlin.\n\nIt cost 4 billion euros.")
    assert runner.invoke(app, ["ingest", str(article)]).exit_code == 0  # with the seed
    for entry in store.read_manifest(env).segments:  # the vectors damaged, the text intact
        with (env / entry.name / store.VECTORS).open("r+b") as handle:
            handle.seek(200)
            handle.write(b"\xff\xff\xff\xff")
    assert runner.invoke(app, ["index", "verify"]).exit_code == 1
    rebuilt = runner.invoke(app, ["index", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "kept 1 documents the sources do not hold" in rebuilt.stderr
    assert "2 documents" in rebuilt.stdout
    found = runner.invoke(app, ["search", "factory in Berlin", "-k", "1"])
    assert json.loads(found.stdout.splitlines()[0])["doc_id"] == "tesla"
    assert runner.invoke(app, ["index", "verify"]).exit_code == 0


def test_a_source_article_deleted_stays_deleted_across_restarts_and_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder
) -> None:
    sources = tmp_path / "articles"
    sources.mkdir()
    for name in ("tesla", "byd"):
        (sources / f"{name}.txt").write_text(f"{name} news\n\n{name.upper()} sold more cars.")
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_SOURCES", json.dumps([str(sources)]))

    def live() -> list[str]:  # as a (re)started server sees them, after syncing the sources
        return sorted(d.doc_id for d in RagService.open(Settings(), embedder).documents())

    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
    assert runner.invoke(app, ["delete", "byd"]).exit_code == 0
    (sources / "nio.txt").write_text("nio news\n\nNIO sold fewer cars.")  # the sources change
    assert live() == ["nio", "tesla"]  # the next start syncs them: byd stays out
    rebuilt = runner.invoke(app, ["index", "rebuild"])
    assert "left out 1 deleted source documents" in rebuilt.stderr
    assert live() == ["nio", "tesla"]
    assert runner.invoke(app, ["ingest", str(sources / "byd.txt")]).exit_code == 0
    assert runner.invoke(app, ["delete", "nio", "tesla", "byd"]).exit_code == 0
    assert live() == []  # an empty index is a valid one
    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
    assert live() == []


def test_a_rebuild_from_unreadable_documents_says_it_used_the_sources_alone(env: Path) -> None:
    from rag.index import store

    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
    for entry in store.read_manifest(env).segments:
        (env / entry.name / store.DOCUMENTS).write_text("{not json")
    rebuilt = runner.invoke(app, ["index", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "cannot be read" in rebuilt.stderr and "from the sources alone" in rebuilt.stderr
    assert "1 documents" in rebuilt.stdout


def test_ask_lists_the_closest_passages_when_it_abstains(env: Path) -> None:
    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
    result = runner.invoke(app, ["ask", "What is the price of the car?"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("(no answer)") and "closest passages" in lines[0]
    assert lines[1].startswith("  [1] xiaomi-great-wall-electric-car ")


def test_ingest_of_a_folder_names_the_files_it_cannot_read(env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "config").write_text("[core]")  # hidden: not an article, not reported
    (folder / "tesla.txt").write_text("Tesla opens a factory in Berlin.\n\nIt cost 4 billion.")
    (folder / "report.pdf").write_bytes(b"%PDF-1.7")
    result = runner.invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 1
    assert "skipped: report.pdf: unsupported file type '.pdf'" in result.stderr
    assert "config" not in result.stderr
    assert "the index now holds 1 documents" in result.stderr  # tesla.txt
