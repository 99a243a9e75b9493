"""The committed reader, for real: exact spans, abstentions, its checksum, topic switches,
follow-ups."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from rag.config import MAX_QUESTION_CHARS, ReaderSettings, Settings
from rag.errors import ReaderError
from rag.models.reader import MODEL_DIR, MODEL_FILE, Reader, shared_reader
from rag.models.reader_windows import build_windows, token_span
from rag.query.answer import ExtractiveAnswerer
from rag.query.conversation import Turn, resolved
from rag.query.pipeline import Query
from rag.service import RagService
from rag.types import AskResult
from tests.conftest import ROOT, SEED_DIR

SECOND_ARTICLE = ROOT / "tests" / "data" / "brentford-signing.txt"


@pytest.fixture(scope="module")
def two_articles(tmp_path_factory: pytest.TempPathFactory, embedder) -> RagService:
    folder = tmp_path_factory.mktemp("two-articles")
    for source in [*SEED_DIR.iterdir(), SECOND_ARTICLE]:
        shutil.copy(source, folder / source.name)
    settings = Settings(index_dir=folder / "index", sources=[folder])
    return RagService.open(settings, embedder)


def assert_traceable(service: RagService, result: AskResult) -> None:
    """The answer is the document's own text at its span, inside the sentence cited first."""
    assert result.answerable and result.answer_span is not None
    span = result.answer_span
    text = service.document(span.doc_id).text
    assert text[span.start : span.end] == result.answer
    first = result.citations[0]
    assert first.doc_id == span.doc_id and first.start <= span.start < span.end <= first.end
    for citation in result.citations:
        assert service.document(citation.doc_id).text[citation.start : citation.end] == (
            citation.quote
        )


@pytest.mark.parametrize(
    "question,expected",
    [
        ("Who is Xiaomi negotiating with?", "Great Wall"),
        ("When did the brand's adventure begin?", "1984"),
        ("How much did Great Wall's Hong Kong shares rise?", "15%"),
        ("Where will Xiaomi cars be produced?", "Hong Kong"),
        ("What country is Xiaomi from?", "China"),
    ],
)
def test_seed_questions_are_answered_with_exact_spans(
    service: RagService, question: str, expected: str
) -> None:
    result = service.ask(question)
    assert_traceable(service, result)
    assert expected in result.answer
    assert len(result.answer) < 60  # a phrase, not the sentence


@pytest.mark.parametrize(
    ("question", "answer_sentence", "expected"),
    [
        ("What country is Xiaomi from?", "Xiaomi from China plans", "China"),
        ("xiaomi stock jump after the report", "rose more than 9%", "9%"),
    ],
)
def test_a_reading_window_is_grown_from_the_sentence_that_holds_the_question_terms(
    service: RagService, question: str, answer_sentence: str, expected: str
) -> None:
    """With `reader_window_chars`, whole sentences around the best one are read; the cosine
    alone picked another sentence of the passage for these two questions."""
    snapshot = service.current()
    config = ReaderSettings(window_chars=150, stop_confidence=None)
    answerer = ExtractiveAnswerer(snapshot.index, snapshot.answerer.reader, config)
    retrieval, _ = service.pipeline.retrieve(snapshot, Query(question), depth=2)
    chunk = retrieval.chunks[0].chunk
    start, end = answerer.reading_window(chunk, retrieval)
    _, starts, ends = snapshot.index.sentence_spans(chunk)
    assert start in starts and end in ends  # whole sentences
    text = snapshot.index.chunk_document(chunk).text
    assert answer_sentence in text[start:end]
    answer = answerer.run(retrieval, threshold=0.0)
    assert expected in answer.text
    doc = snapshot.index.chunk_document(answer.evidence[0].chunk)
    assert doc.text[answer.span[0] : answer.span[1]] == answer.text


@pytest.mark.parametrize(
    "question",
    [
        "Who is the CEO of Great Wall Motor?",
        "How much will the Xiaomi car cost?",
        "What is the battery capacity of Xiaomi's car?",
        "Who won the 2018 football world cup?",
    ],
)
def test_what_the_article_does_not_say_is_not_answered(service: RagService, question) -> None:
    result = service.ask(question)
    assert not result.answerable and result.answer is None and result.answer_span is None
    assert result.confidence < service.current().answerer.threshold


def test_confidence_is_a_probability_and_ranks_right_above_wrong(service: RagService) -> None:
    right = service.ask("When will Xiaomi's first electric car arrive?")
    wrong = service.ask("What is the driving range of the electric car on a single charge?")
    assert 0.0 <= wrong.confidence < right.confidence <= 1.0
    assert right.signals["margin"] > wrong.signals["margin"]


def test_spans_verify_across_a_corpus_of_two_articles(two_articles: RagService) -> None:
    questions = [
        "Who did Brentford sign?",
        "Which club did Damsgaard leave?",
        "How long is Damsgaard's contract?",
        "Who is the Brentford head coach?",
        "Where do Brentford open the new campaign?",
        "when is the first vehicle expected?",
        "Which company will build Xiaomi's cars?",
    ]
    answered = [r for r in map(two_articles.ask, questions) if r.answerable]
    assert len(answered) >= len(questions) - 1  # the reader may decline one it is unsure of
    for result in answered:
        assert_traceable(two_articles, result)


def test_a_new_topic_is_not_merged_with_the_previous_question(two_articles) -> None:
    history = [
        Turn("user", "Which company will build Xiaomi's cars?"),
        Turn("assistant", "Great Wall"),
    ]
    result = two_articles.ask("Who did Brentford sign?", history=history)
    assert "Damsgaard" in (result.answer or "")
    assert result.answer_span.doc_id == "brentford-signing"


def test_a_follow_up_is_read_with_the_previous_question(two_articles) -> None:
    history = [
        Turn("user", "Which company will build Xiaomi's cars?"),
        Turn("assistant", "Great Wall"),
    ]
    result = two_articles.ask("and when will the first one arrive?", history=history)
    assert result.answer == "2023"
    assert result.answer_span.doc_id == "xiaomi-great-wall-electric-car"


@pytest.mark.parametrize(
    ("earlier", "follow_up", "expected", "read_as"),
    [
        pytest.param(  # declined when read unresolved, alone or with the question before
            ("Which club signed Damsgaard?", "Brentford"),
            "Where did they finish last season?",
            "13th",
            "Where did Brentford finish last season?",
        ),
        (
            ("Who did Brentford sign?", "Mikkel Damsgaard"),
            "Which country did he play for?",
            "Danish",
            "Which country did Mikkel Damsgaard play for?",
        ),
    ],
)
def test_a_pronoun_in_a_follow_up_is_read_as_the_name_it_stands_for(
    two_articles, earlier, follow_up, expected, read_as
) -> None:
    history = [Turn("user", earlier[0]), Turn("assistant", earlier[1])]
    result = two_articles.ask(follow_up, history=history)
    assert_traceable(two_articles, result)
    assert expected in result.answer
    assert result.answer_span.doc_id == "brentford-signing"
    assert result.question == follow_up  # the user's words are echoed, and the reading shown
    assert result.read_as == read_as


def test_a_follow_up_at_the_length_limit_is_answered_without_its_longer_rewrite(
    service: RagService,
) -> None:
    question = "Where will they be produced?" + " and" * 492
    name = "Great Wall Motor Factory"
    assert len(question) <= MAX_QUESTION_CHARS < len(question) - len("they") + len(name)
    history = [Turn("user", f"Who works with {name}?"), Turn("assistant", "Xiaomi")]
    result = service.ask(question, history=history)
    assert result.question == question.strip()  # answered, not a 422 for the rewrite


def test_pronouns_are_resolved_to_the_names_of_the_conversation() -> None:
    history = [Turn("user", "How many people died in the Black Death?"), Turn("assistant", "40%")]
    assert resolved("and what caused it?", history) == ["and what caused Black Death?"]
    history = [Turn("user", "Who founded Xiaomi?"), Turn("assistant", "Lei Jun")]
    assert resolved("When was he born?", history) == [
        "When was Xiaomi born?",
        "When was Lei Jun born?",
    ]
    assert resolved("What is its market value?", history)[0] == "What is Xiaomi's market value?"
    history = [Turn("user", "Who won the Nobel Prize in 1911?"), Turn("assistant", "Marie Curie")]
    assert resolved("Who was her husband?", history)[1] == "Who was Marie Curie's husband?"
    assert resolved("Who married her?", history)[1] == "Who married Marie Curie?"
    assert resolved("Who gave it to her?", history)[0] == "Who gave Nobel Prize to her?"
    assert resolved("Who did Brentford sign?", history) == []  # no pronoun: nothing to resolve
    assert resolved("Who runs it?", []) == []  # nothing to resolve it with


def test_windows_map_tokens_back_to_exact_characters() -> None:
    reader = shared_reader()
    passage = "Xiaomi plans to use the Great Wall Motor Factory Co., Ltd. to build cars. " * 20
    windows = build_windows(reader.tokenizer, ["Who builds the cars?"], [passage])
    assert len(windows.input_ids) > 1  # a long passage is read in overlapping windows
    start = passage.index("Great Wall", 500)
    for offsets in windows.offsets:
        span = token_span(offsets, start, start + len("Great Wall"))
        if span is not None:
            first, last = offsets[span[0]], offsets[span[1]]
            assert passage[first[0] : last[1]] == "Great Wall"
            break
    else:
        pytest.fail("no window holds the span")


def test_a_missing_or_altered_model_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="make train-reader"):
        Reader(tmp_path)
    altered = tmp_path / "altered"
    shutil.copytree(MODEL_DIR, altered)
    with (altered / MODEL_FILE).open("r+b") as handle:
        handle.seek(4096)
        byte = handle.read(1)
        handle.seek(4096)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ReaderError, match="SHA-256"):
        Reader(altered)


def test_a_smaller_reader_keeps_the_chosen_layers_of_a_larger_one() -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering

    from rag.models.embeddings import resolve_model
    from train.reader import shrink

    full = AutoModelForQuestionAnswering.from_pretrained(resolve_model("all-MiniLM-L6-v2"))
    originals = [full.bert.encoder.layer[i] for i in (0, 2, 5)]
    small = shrink(full, "0,2,5")
    assert list(small.bert.encoder.layer) == originals
    assert small.config.num_hidden_layers == 3
    ids = torch.tensor([[101, 2054, 102, 2023, 102]])
    with torch.no_grad():
        out = small(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert out.start_logits.shape == (1, 5)


@pytest.mark.parametrize(
    "question,expected",
    [
        ("When did Xiaomi start selling cars?", {"xiaomi start selling cars"}),
        ("Where will the cars be made?", {"will cars made"}),
        ("How many people founded Xiaomi?", {"people founded xiaomi"}),
    ],
)
def test_a_question_as_search_keywords_keeps_its_content_words(question, expected) -> None:
    from train.reader import QUESTION_WORD_HINTS, search_form

    hints = {h for hints in QUESTION_WORD_HINTS.values() for h in hints if h}
    for seed in range(20):
        keywords = search_form(question, random.Random(seed))
        core = keywords
        for hint in sorted(hints, key=len, reverse=True):
            core = core.removeprefix(hint + " ").removesuffix(" " + hint)
        assert core in expected, keywords
    assert search_form("Why?", random.Random(0)) is None


def test_a_vague_follow_up_replaces_a_whole_name_with_a_pronoun() -> None:
    from train.reader import vague_referent

    forms = {
        vague_referent("When did the Great Wall Motor plant open?", random.Random(s))
        for s in range(20)
    }
    assert forms == {"When did it plant open?", "When did they plant open?"}
    owners = {vague_referent("Who founded Xiaomi's car unit?", random.Random(s)) for s in range(20)}
    assert owners == {"Who founded its car unit?", "Who founded their car unit?"}
    assert vague_referent("Who built it?", random.Random(0)) is None


def test_a_paragraph_without_its_answer_keeps_the_topic_and_loses_the_answer() -> None:
    from train.reader import without_answer

    article = (SEED_DIR / "xiaomi-great-wall-electric-car.txt").read_text()
    two = article.split("\n\n")[2]  # "...produced in Hong Kong city. ...began in 1984 and..."
    four = " ".join(article.split("\n\n")[2:4])
    start = four.index("1984")
    rest = without_answer(four, (start, start + 4), "1984")
    assert rest is not None and "1984" not in rest
    assert rest.startswith("According to Reuters, Xiaomi cars will be produced in Hong Kong city.")
    assert "9%" in rest and len(rest) < len(four)
    start = four.index("Hong Kong")  # said again in a sentence that stays: not silent on it
    assert without_answer(four, (start, start + 9), "Hong Kong") is None
    start = two.index("1984")  # one sentence left is not a paragraph
    assert without_answer(two, (start, start + 4), "1984") is None


def test_a_name_swapped_within_its_paragraph_is_one_the_answer_sentence_never_names() -> None:
    from train.reader import swap_within

    article = (SEED_DIR / "xiaomi-great-wall-electric-car.txt").read_text()
    four = " ".join(article.split("\n\n")[2:4])
    sentence = "According to Reuters, Xiaomi cars will be produced in Hong Kong city."
    start = four.index("Hong Kong city")
    question = "Where will Xiaomi's cars be produced?"
    names = set()
    for seed in range(20):
        swapped = swap_within(question, four, (start, start + 14), random.Random(seed))
        names.add(swapped.removeprefix("Where will ").removesuffix("'s cars be produced?"))
    assert len(names) > 1 and "Xiaomi" not in names
    assert all(name in four and name not in sentence for name in names)
    no_name = "Where will the cars be produced?"
    assert swap_within(no_name, four, (start, start + 14), random.Random(0)) is None


def test_a_number_swapped_within_its_paragraph_is_one_the_answer_sentence_never_says() -> None:
    from train.reader import swap_number_within

    article = (SEED_DIR / "xiaomi-great-wall-electric-car.txt").read_text()
    start = article.index("The brand's adventure")
    span = (start, start + len("The brand's adventure"))
    swapped = {
        swap_number_within("What began in 1984?", article, span, random.Random(s)) for s in range(5)
    }
    assert swapped == {"What began in 2023?"}  # the one other year; "15" and "10" are no years
    start = article.index("Great Wall Hong Kong shares")
    span = (start, start + len("Great Wall Hong Kong shares"))
    # 15 and 10 share the answer's sentence: swapping them would still ask what it says.
    assert (
        swap_number_within("Which shares rose more than 15%?", article, span, random.Random(0))
        is None
    )
    assert swap_number_within("What began then?", article, span, random.Random(0)) is None


def test_a_transplanted_question_asks_about_a_name_of_the_paragraph_and_reads_on_topic() -> None:
    from train.reader import content_words, transplant, transplanted

    article = (SEED_DIR / "xiaomi-great-wall-electric-car.txt").read_text()
    paragraph = article.split("\n\n")[4]
    for seed in range(10):
        moved = transplant("When did Chopin leave Warsaw?", paragraph, random.Random(seed))
        rest = re.fullmatch(r"When did (.+) leave Warsaw\?|When did Chopin leave (.+)\?", moved)
        name = rest.group(1) or rest.group(2)
        assert name in paragraph and name not in ("Chopin", "Warsaw")
    assert transplant("When did he leave?", paragraph, random.Random(0)) is None
    questions = [(1, "What did Chopin produce in Paris?"), (2, "Who wrote Hamlet?"), (0, "Why?")]
    words = content_words(paragraph)
    for seed in range(10):
        moved = transplanted(questions, 0, paragraph, words, random.Random(seed))
        # Only the first is on topic ("produce", not just the name put in) and unanswered ("Paris").
        if moved is not None:
            assert re.fullmatch(r"What did .+ produce in .+\?", moved)
            assert moved != questions[0][1]
    assert transplanted(questions[1:], 0, paragraph, words, random.Random(0)) is None


def test_a_student_is_taught_where_the_teacher_points_and_nowhere_in_the_padding() -> None:
    import torch

    from train.reader import distillation_loss

    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    teacher = torch.tensor([[0.5, 3.0, -1.0, 0.0, 9.0, 9.0]])
    assert distillation_loss(teacher, teacher, mask, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    padded_differently = teacher.clone()
    padded_differently[0, 4:] = -9.0
    assert distillation_loss(padded_differently, teacher, mask, 2.0).item() == pytest.approx(
        0.0, abs=1e-6
    )
    elsewhere = torch.tensor([[3.0, 0.5, -1.0, 0.0, 0.0, 0.0]])
    assert distillation_loss(elsewhere, teacher, mask, 2.0).item() > 0.5


def test_an_exported_reader_runs_fused_int8_and_scores_like_the_trained_one(
    tmp_path: Path,
) -> None:
    import numpy as np
    import onnx
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    from train.export_reader import export

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    trained = BertForQuestionAnswering(config).eval()
    trained.save_pretrained(tmp_path / "trained" / "final")
    digest = export(tmp_path / "trained", tmp_path / "out", fused=True)

    graph = onnx.load(tmp_path / "out" / MODEL_FILE).graph
    assert sum(node.op_type == "QAttention" for node in graph.node) == 2  # one per layer
    reader = Reader(tmp_path / "out", expected_sha256=digest)
    question, passage = "Who builds the cars?", "Great Wall Motor builds the cars in China."
    windows = build_windows(reader.tokenizer, [question], [passage])
    ids = np.array(windows.input_ids)
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.array(windows.token_type_ids),
    }
    start, _ = reader.session.run(None, feeds)
    with torch.no_grad():
        expected = trained(**{k: torch.from_numpy(v) for k, v in feeds.items()}).start_logits
    assert np.corrcoef(start[0], expected[0].numpy())[0, 1] > 0.95
    assert reader.read(question, [passage])[0].passage == 0
