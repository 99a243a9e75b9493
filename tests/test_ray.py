"""Distributed ingest on a local Ray (`ray.init(num_cpus=2)` inside `rag ingest --ray local`):
files read, cut and embedded by Ray Data workers, written to PostgreSQL in batches."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from rag.config import Settings
from rag.ingest.distributed import ingest_with_ray
from rag.service import RagService
from tests.conftest import SEED_DIR

pytestmark = pytest.mark.slow  # a Ray cluster's start-up


def test_ray_ingest_writes_every_document_and_reports_bad_files(
    postgres_url: str, embedder, tmp_path: Path
) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    cities = ["Lyon", "Graz", "Porto", "Turku", "Brno", "Gdansk", "Malmo", "Bilbao", "Cork"]
    paragraphs = [
        f"Factory {n} of Nordvolt in {cities[n % 9]} opened in {2000 + n}. It makes cells."
        for n in range(30)
    ] + [(SEED_DIR / name).read_text() for name in sorted(SEED_DIR.iterdir())]
    for n, text in enumerate(paragraphs):
        (folder / f"p{n:03d}.txt").write_text(text)
    (folder / "plant.md").write_text("# Lumen opens a plant\n\nLumen's plant in Tallinn opened.")
    (folder / "broken.json").write_text("{not json")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE ray_ingest")
    settings = Settings(database_url=postgres_url.rsplit("/", 1)[0] + "/ray_ingest", sources=[])
    report = ingest_with_ray([folder], settings, "local", workers=2)
    assert report.documents == len(paragraphs) + 1
    assert len(report.problems) == 1 and "broken.json" in report.problems[0]
    service = RagService(settings, embedder)
    service.activate(service.backend.load())
    assert service.backend.verify() == []
    assert len(service.documents()) == len(paragraphs) + 1
    answer = service.ask("Where did Lumen open a plant?")
    assert answer.answer == "Tallinn"
