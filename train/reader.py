"""Train the extractive reader: all-MiniLM-L6-v2 fine-tuned on SQuAD 2.0 train for span
extraction, with a no-answer score at [CLS] learned from its human-written unanswerable
questions (and, optionally, from negatives built here).

Reproducible (fixed seed, settings logged), resumable (a checkpoint every few minutes), on
a CUDA device when there is one and on the CPU otherwise (same recipe): `make train-reader` runs
it; `python -m train.reader --help` lists the settings. Articles whose index is a multiple of
HOLDOUT_EVERY are never trained on: they are the calibration set (`python -m train.calibrate`)
and what the run scores itself on at the end (summary.json). Dev sets are only ever reported on.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.ingest.chunking import split_sentences
from rag.models.reader_windows import (
    WindowTokenizer,
    build_windows,
    pad,
    token_span,
    trained_windows,
)
from rag.query.conversation import NAME as PROPER  # the names a follow-up's pronoun stands for

log = logging.getLogger("train")
HOLDOUT_EVERY = 20
WORD = re.compile(r"\w+")
STOP = frozenset(
    """a an the of in on at to for by with from and or is was were are be been what which who
    whom whose when where why how did does do that this these those as it its than into""".split()  # noqa: SIM905
)
NUMBER = re.compile(r"\b\d{2,4}\b")
ANTONYM_PAIRS = """first last, largest smallest, biggest smallest, highest lowest, most least,
    earliest latest, before after, increase decrease, increased decreased, north south, east west,
    northern southern, eastern western, won lost, win lose, maximum minimum, oldest youngest,
    longest shortest, best worst, more less, major minor, early late, inside outside, above below,
    public private, ancient modern, larger smaller, higher lower, older younger, stronger weaker"""
ANTONYMS = {
    word: other
    for pair in ANTONYM_PAIRS.split(",")
    for a, b in [pair.split()]
    for word, other in ((a, b), (b, a))
}
AUXILIARY = re.compile(r"^(\w+ )(is|was|are|were) ")
# What a search box gets instead of the question word: "when did X open" -> "X open date".
QUESTION_WORD_HINTS = {
    "when": ("date", "when", "year", ""),
    "where": ("location", "where", "place", ""),
    "who": ("who", ""),
    "whom": ("who", ""),
    "how many": ("number", "how many", ""),
    "how much": ("how much", "amount", "price", ""),
}
PREPOSITIONS = frozenset("of in on at to for by with from about into after before".split())  # noqa: SIM905


@dataclass
class Config:
    data: str
    out: str
    seed: int = 13
    max_tokens: int = 192
    stride: int = 64
    batch_size: int = 128
    lr: float = 1.5e-4
    weight_decay: float = 0.01
    warmup: float = 0.06
    epochs: float = 2.0  # passes over the windows (max_steps, when set, wins)
    max_steps: int = 0
    other_paragraph_negatives: float = (
        0.25  # share of questions also read against another paragraph
    )
    edited_question_negatives: float = 0.0  # share with an entity swapped out of the question
    meaning_edit_negatives: float = 0.0  # share with an antonym or a negation put in
    search_form_questions: float = 0.0  # share asked as search-box keywords ("xiaomi ev date")
    vague_referent_questions: float = 0.0  # share with a name made a pronoun (follow-ups)
    answer_removed_negatives: float = 0.0  # share read against their paragraph minus the answer
    paragraph_name_swap_negatives: float = 0.0  # share with a name swapped for another of theirs
    paragraph_number_swap_negatives: float = 0.0  # the same with a number or year
    transplanted_question_negatives: float = 0.0  # share also read with another article's question
    answerless_window_keep: float = 0.3  # windows of long paragraphs that miss the answer
    checkpoint_minutes: float = 5.0  # how much work an interruption may cost at most
    bf16: bool = True
    init_from: str = ""  # a trained stage's `final` folder to continue from; "" = the base encoder
    encoder: str = ""  # the base encoder's folder; "" = the packaged all-MiniLM-L6-v2
    keep_layers: str = ""  # encoder layers of the start to keep ("0,2,5": a smaller, faster reader)
    distill_from: str = ""  # a trained reader's `final` folder whose start/end scores to imitate
    distill_weight: float = 0.5  # share of the loss that is imitation (with distill_from)
    distill_temperature: float = 2.0
    train_word_embeddings: bool = False  # 1: fine-tune the 30k x 384 word embeddings too


def split_articles(data: list[dict]) -> tuple[list[dict], list[dict]]:
    train = [a for i, a in enumerate(data) if i % HOLDOUT_EVERY]
    held = [a for i, a in enumerate(data) if not i % HOLDOUT_EVERY]
    return train, held


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP}


def edit_question(question: str, context: str, pool: dict[str, list[str]], rng: random.Random):
    """Swap a name or number the passage supports for one it never mentions (SQuAD 2.0's recipe)."""
    names = [m for m in PROPER.finditer(question) if m.start() > 0 and m.group() in context]
    numbers = [m for m in NUMBER.finditer(question) if m.group() in context]
    choices = [(m, "name") for m in names] + [(m, "number") for m in numbers]
    if not choices:
        return None
    match, kind = rng.choice(choices)
    for _ in range(10):
        other = rng.choice(pool[kind])
        if other.lower() not in context.lower() and other != match.group():
            return question[: match.start()] + other + question[match.end() :]
    return None


def swap_within(question: str, context: str, span: tuple[int, int], rng: random.Random):
    """Swap a name of the question for another name of the same paragraph that its answer's
    sentence never mentions: every word still appears in the passage, but what is asked about
    is not what the answer is said of (SQuAD 2.0's entity swap at its hardest)."""
    names = [m for m in whole_names(question) if m.start() > 0 and m.group() in context]
    if not names:
        return None
    sentence = context[sentence_around(context, span)]
    match = rng.choice(names)
    others = sorted(
        {
            m.group()
            for m in whole_names(context)
            if len(m.group()) > 2
            and re.search(r"[a-z,] $", context[max(0, m.start() - 2) : m.start()])
            and m.group() not in question
            and m.group() not in sentence
            and match.group() not in m.group()
            and m.group() not in match.group()
        }
    )
    if not others:
        return None
    return question[: match.start()] + rng.choice(others) + question[match.end() :]


def swap_number_within(question: str, context: str, span: tuple[int, int], rng: random.Random):
    """Swap a number or year of the question for another of the same length from the same
    paragraph that the answer's sentence never mentions ("in 1998" for "in 2001")."""
    numbers = [m for m in NUMBER.finditer(question) if m.group() in context]
    if not numbers:
        return None
    sentence = context[sentence_around(context, span)]
    match = rng.choice(numbers)
    others = sorted(
        {
            n
            for n in NUMBER.findall(context)
            if len(n) == len(match.group()) and n not in question and n not in sentence
        }
    )
    if not others:
        return None
    return question[: match.start()] + rng.choice(others) + question[match.end() :]


def transplant(question: str, context: str, rng: random.Random) -> str | None:
    """Another article's question about a name of this paragraph ("When did Beyoncé die?" put
    to a paragraph on Chopin becomes "When did Chopin die?"): the name is there, what is asked of
    it almost never is (SQuAD 2.0's questions about a real entity and an unstated fact)."""
    asked = [m for m in whole_names(question) if m.start() > 0]
    present = sorted({m.group() for m in whole_names(context) if len(m.group()) > 2})
    if not asked or not present:
        return None
    match = rng.choice(asked)
    name = rng.choice(present)
    if name in question:
        return None
    return question[: match.start()] + name + question[match.end() :]


def transplanted(
    questions: list[tuple[int, str]],
    article: int,
    context: str,
    context_words: set[str],
    rng: random.Random,
    tries: int = 8,
) -> str | None:
    """A transplant from another article that shares a word with the paragraph besides the
    name put in, so that it reads as on topic, and misses one, so that the paragraph is unlikely
    to answer it after all."""
    for _ in range(tries):
        source, question = rng.choice(questions)
        edited = transplant(question, context, rng) if source != article else None
        if (
            edited
            and content_words(question) & context_words
            and content_words(edited) - context_words
        ):
            return edited
    return None


def sentence_around(context: str, span: tuple[int, int]) -> slice:
    """The sentence holding the answer's start (the answer alone if none is found)."""
    holding = next((s for s in split_sentences(context) if s.start <= span[0] < s.end), None)
    return slice(holding.start, holding.end) if holding else slice(*span)


def whole_names(text: str) -> list[re.Match]:
    """Names not cut from a longer one ("Destiny" of "Destiny's Child")."""
    return [m for m in PROPER.finditer(text) if not re.match(r"'s [A-Z]|-", text[m.end() :])]


def edit_meaning(question: str, context: str, rng: random.Random) -> str | None:
    """Turn a word into its antonym the passage never uses, or negate the verb: the passage still
    reads as relevant but no longer answers (SQuAD 2.0's other two recipes)."""
    words = [m for m in WORD.finditer(question) if m.group().lower() in ANTONYMS]
    unused = [
        m for m in words if not re.search(rf"\b{ANTONYMS[m.group().lower()]}\b", context, re.I)
    ]
    if unused and rng.random() < 0.6:
        match = rng.choice(unused)
        other = ANTONYMS[match.group().lower()]
        if match.group()[0].isupper():
            other = other.capitalize()
        return question[: match.start()] + other + question[match.end() :]
    verb = AUXILIARY.match(question)
    if verb and " not " not in question and "n't" not in question:
        return question[: verb.end()] + "not " + question[verb.end() :]
    return None


def search_form(question: str, rng: random.Random) -> str | None:
    """The question as people type it into a search box: its content words, lower case, with
    the question word kept or swapped for the kind of answer wanted."""
    lowered = question.lower()
    hints = next(
        (
            hints
            for word, hints in QUESTION_WORD_HINTS.items()
            if re.match(rf"\W*{word}\b", lowered)
        ),
        ("",),
    )
    words = [w for w in WORD.findall(lowered) if w not in STOP and w not in ("many", "much")]
    if len(words) < 2:
        return None
    hint = rng.choice(hints)
    keywords = [hint, *words] if hint and rng.random() < 0.4 else [*words, hint]
    return " ".join(w for w in keywords if w)


def vague_referent(question: str, rng: random.Random) -> str | None:
    """A name in the question made a pronoun, as in a follow-up ("when will it arrive?"): the
    passage still answers it, so the reader should not take vagueness for "no answer"."""
    names = referable_names(question)
    return with_pronoun(question, rng.choice(names), rng) if names else None


def referable_names(question: str) -> list[re.Match]:
    """Names in the question that a pronoun could stand in for: after a lower-case word, and
    followed by the end, a space, a comma or a possessive."""
    return [
        m
        for m in PROPER.finditer(question)
        if len(m.group()) > 2
        and re.search(r"(?:^|\s)[a-z]+ $", question[: m.start()])
        and question[m.end() : m.end() + 1] in ("", " ", "?", ",", "'")
    ]


def with_pronoun(question: str, name: re.Match, rng: random.Random) -> str:
    start, end = name.span()
    before = question[:start]
    if before.endswith("the "):
        start -= 4
    if question.startswith("'s", end):
        pronoun, end = rng.choice(("its", "their")), end + 2
    elif before.split()[-1] in PREPOSITIONS:
        pronoun = rng.choice(("it", "them"))
    else:
        pronoun = rng.choice(("it", "they"))
    return question[:start] + pronoun + question[end:]


def answer_span(context: str, answer: dict) -> tuple[int, int] | None:
    """Where the answer's text is, near its recorded start (the rebuilt data's starts may be
    a few characters off), else anywhere in the paragraph."""
    start = context.find(answer["text"], max(0, answer["answer_start"] - 10))
    if start < 0:
        start = context.find(answer["text"])
    return None if start < 0 else (start, start + len(answer["text"]))


def without_answer(context: str, span: tuple[int, int], answer: str) -> str | None:
    """The paragraph with the sentences holding the answer taken out: still on the question's
    topic, with its names, but no longer saying what was asked (as when an article does not
    give a car's price). None when the answer is said elsewhere too, or under two sentences stay."""
    kept = [s for s in split_sentences(context) if s.end <= span[0] or s.start >= span[1]]
    rest = " ".join(context[s.start : s.end] for s in kept)
    if len(kept) < 2 or answer.lower() in rest.lower():
        return None
    return rest


def rephrase(question: str, cfg: Config, rng: random.Random, vague: bool = True) -> str:
    """The question as asked, or (at the configured rates) as a follow-up or a search query."""
    if vague and cfg.vague_referent_questions and rng.random() < cfg.vague_referent_questions:
        question = vague_referent(question, rng) or question
    if cfg.search_form_questions and rng.random() < cfg.search_form_questions:
        question = search_form(question, rng) or question
    return question


def build_examples(articles: list[dict], cfg: Config, rng: random.Random) -> list[dict]:
    """(question, context, answer char span or None) triples: SQuAD's, plus negatives."""
    pool: dict[str, list[str]] = {"name": [], "number": []}
    questions = []  # (article index, question) for transplants
    for owner, article in enumerate(articles):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append((owner, qa["question"]))
                pool["name"] += [m.group() for m in PROPER.finditer(qa["question"]) if m.start()]
                pool["number"] += NUMBER.findall(qa["question"])
    examples = []
    for owner, article in enumerate(articles):
        paragraphs = [p["context"] for p in article["paragraphs"]]
        words = [content_words(p) for p in paragraphs]
        for index, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    # SQuAD 2.0's own: written to look answerable by this paragraph, and not
                    question = rephrase(qa["question"], cfg, rng)
                    examples.append({"q": question, "c": context, "span": None})
                    continue
                answer = qa["answers"][0]
                span = answer_span(context, answer)
                if span is None:
                    continue
                question = rephrase(qa["question"], cfg, rng)
                examples.append({"q": question, "c": context, "span": span})
                if rng.random() < cfg.other_paragraph_negatives and len(paragraphs) > 1:
                    asked = content_words(question)
                    scores = [len(asked & w) if i != index else -1 for i, w in enumerate(words)]
                    other = int(np.argmax(scores))
                    if answer["text"].lower() not in paragraphs[other].lower():
                        examples.append({"q": question, "c": paragraphs[other], "span": None})
                if rng.random() < cfg.edited_question_negatives:
                    edited = edit_question(qa["question"], context, pool, rng)
                    if edited:
                        edited = rephrase(edited, cfg, rng, vague=False)
                        examples.append({"q": edited, "c": context, "span": None})
                swap = cfg.paragraph_name_swap_negatives
                if swap and rng.random() < swap:
                    edited = swap_within(qa["question"], context, span, rng)
                    if edited:
                        examples.append({"q": edited, "c": context, "span": None})
                if cfg.meaning_edit_negatives and rng.random() < cfg.meaning_edit_negatives:
                    edited = edit_meaning(qa["question"], context, rng)
                    if edited:
                        examples.append({"q": edited, "c": context, "span": None})
                if cfg.answer_removed_negatives and rng.random() < cfg.answer_removed_negatives:
                    rest = without_answer(context, span, answer["text"])
                    if rest:
                        examples.append({"q": question, "c": rest, "span": None})
                numbers = cfg.paragraph_number_swap_negatives
                if numbers and rng.random() < numbers:
                    edited = swap_number_within(qa["question"], context, span, rng)
                    if edited:
                        examples.append({"q": edited, "c": context, "span": None})
                moved = cfg.transplanted_question_negatives
                if moved and rng.random() < moved:
                    edited = transplanted(questions, owner, context, words[index], rng)
                    if edited:
                        examples.append({"q": edited, "c": context, "span": None})
    return examples


def build_features(
    tokenizer: WindowTokenizer, examples: list[dict], cfg: Config, rng: random.Random
) -> list:
    """Token windows with start/end targets; (0, 0) points at [CLS]: no answer here."""
    features = []
    for begin in range(0, len(examples), 2000):
        batch = examples[begin : begin + 2000]
        windows = build_windows(tokenizer, [e["q"] for e in batch], [e["c"] for e in batch])
        for ids, types, offsets, owner in zip(
            windows.input_ids,
            windows.token_type_ids,
            windows.offsets,
            windows.passage,
            strict=True,
        ):
            example = batch[owner]
            target = token_span(offsets, *example["span"]) if example["span"] else None
            if target is None and example["span"] and rng.random() > cfg.answerless_window_keep:
                continue
            features.append((ids, types, target or (0, 0)))
    return features


def batches(features: list, cfg: Config, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar lengths (little padding), the same for a seed and epoch."""
    rng = random.Random(cfg.seed * 1000 + epoch)
    order = list(range(len(features)))
    rng.shuffle(order)
    chunk = cfg.batch_size * 50
    grouped = []
    for begin in range(0, len(order), chunk):
        part = sorted(order[begin : begin + chunk], key=lambda i: len(features[i][0]))
        grouped += [part[i : i + cfg.batch_size] for i in range(0, len(part), cfg.batch_size)]
    rng.shuffle(grouped)
    return grouped


def save_atomically(obj, path: Path) -> None:
    import torch

    staging = path.with_name(path.name + ".tmp")
    torch.save(obj, staging)
    os.replace(staging, path)


def shrink(model, keep_layers: str):
    """The model with only the listed encoder layers, in order (before any checkpoint loads)."""
    if not keep_layers:
        return model
    import torch

    kept = [int(i) for i in keep_layers.split(",")]
    model.bert.encoder.layer = torch.nn.ModuleList(model.bert.encoder.layer[i] for i in kept)
    model.config.num_hidden_layers = len(kept)
    return model


def distillation_loss(student, teacher, mask, temperature: float):
    """How far the student's distribution over answer positions is from the teacher's (KL,
    both softened by `temperature`, scaled by its square as in Hinton et al.)."""
    import torch

    def log_soft(logits):
        return torch.log_softmax(logits.float().masked_fill(mask == 0, -1e4) / temperature, -1)

    return torch.nn.functional.kl_div(
        log_soft(student), log_soft(teacher), log_target=True, reduction="batchmean"
    ) * (temperature**2)


def train(cfg: Config) -> Path:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    if cfg.encoder:
        encoder = Path(cfg.encoder)
    else:  # imported here: it brings the service's settings, which a GPU box may lack
        from rag.models.embeddings import resolve_model

        encoder = Path(resolve_model("all-MiniLM-L6-v2"))
    base = cfg.init_from or encoder
    tokenizer = trained_windows(encoder / "tokenizer.json", asdict(cfg))
    data = json.loads(Path(cfg.data).read_text())["data"]
    articles, held = split_articles(data)
    rng = random.Random(cfg.seed)
    started = time.time()
    examples = build_examples(articles, cfg, rng)
    features = build_features(tokenizer, examples, cfg, rng)
    answerless = sum(1 for f in features if f[2] == (0, 0))
    log.info(
        "%d examples -> %d windows (%d without an answer) in %.0f s",
        len(examples),
        len(features),
        answerless,
        time.time() - started,
    )
    # fp32 master weights whatever the stored copy's precision (bf16 only inside autocast)
    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32)
    model = shrink(model, cfg.keep_layers).to(device)
    teacher = None
    if cfg.distill_from:
        teacher = AutoModelForQuestionAnswering.from_pretrained(
            cfg.distill_from, dtype=torch.float32
        )
        teacher = teacher.to(device).eval()
    # The 30k x 384 word embeddings are half the parameters; frozen, they cost no optimiser time.
    model.bert.embeddings.word_embeddings.weight.requires_grad_(cfg.train_word_embeddings)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0}],
        lr=cfg.lr,
    )
    max_steps = cfg.max_steps or math.ceil(cfg.epochs * len(features) / cfg.batch_size)
    warmup = int(cfg.warmup * max_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / max(1, warmup), max(0.0, (max_steps - s) / (max_steps - warmup))),
    )
    checkpoint = out / "checkpoint.pt"
    step = 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        log.info("resumed at step %d", step)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    log.info("training on %s: %d steps of %d windows", device, max_steps, cfg.batch_size)
    per_epoch = batches(features, cfg, 0)
    model.train()
    log_file = (out / "train.jsonl").open("a")
    seen, tick = 0, time.time()
    saved = time.time()
    while step < max_steps:
        epoch, position = divmod(step, len(per_epoch))
        if position == 0 or step == 0 or seen == 0:
            per_epoch = batches(features, cfg, epoch)
        rows = [features[i] for i in per_epoch[position]]
        ids = torch.from_numpy(pad([r[0] for r in rows], 16)).to(device)
        types = torch.from_numpy(pad([r[1] for r in rows], 16)).to(device)
        mask = (ids != 0).long()
        starts = torch.tensor([r[2][0] for r in rows], device=device)
        ends = torch.tensor([r[2][1] for r in rows], device=device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.bf16):
            output = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
        start_logits = output.start_logits.float().masked_fill(mask == 0, -1e4)
        end_logits = output.end_logits.float().masked_fill(mask == 0, -1e4)
        loss = (
            torch.nn.functional.cross_entropy(start_logits, starts)
            + torch.nn.functional.cross_entropy(end_logits, ends)
        ) / 2
        if teacher is not None:
            with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.bf16):
                taught = teacher(input_ids=ids, attention_mask=mask, token_type_ids=types)
            imitation = (
                distillation_loss(start_logits, taught.start_logits, mask, cfg.distill_temperature)
                + distillation_loss(end_logits, taught.end_logits, mask, cfg.distill_temperature)
            ) / 2
            loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * imitation
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        seen += len(rows)
        if step % 20 == 0:
            rate = seen / (time.time() - tick)
            record = {
                "step": step,
                "loss": round(loss.item(), 4),
                "lr": schedule.get_last_lr()[0],
                "windows_per_s": round(rate, 1),
                "epoch": epoch,
                "eta_min": round((max_steps - step) * cfg.batch_size / rate / 60, 1),
            }
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            log.info("%s", record)
        if time.time() - saved > cfg.checkpoint_minutes * 60 or step == max_steps:
            saved = time.time()
            save_atomically(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "step": step,
                },
                checkpoint,
            )
    final = out / "final"
    model.save_pretrained(final)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(final)
    summary = {
        "config": asdict(cfg),
        "device": device,
        "examples": len(examples),
        "windows": len(features),
        "answerless_windows": answerless,
        "steps": step,
        "epochs": round(step * cfg.batch_size / len(features), 3),
        "held_out": held_out_scores(
            model, trained_windows(final / "tokenizer.json", asdict(cfg)), held
        ),
    }
    log.info("held-out train articles: %s", summary["held_out"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return final


def held_out_scores(model, tokenizer: WindowTokenizer, held: list[dict]) -> dict:
    """The network on the articles it never saw, at the margin cut that suits them best (the
    figure to compare recipes by: no dev set is looked at)."""
    from train.evaluate import best_cut, predict, score, squad_items

    items = squad_items(held)
    predictions = predict(model, tokenizer, items)
    return {
        **score(items, predictions, best_cut(items, predictions)),
        "at_cut_0": score(items, predictions, 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, field in Config.__dataclass_fields__.items():
        default = field.default
        if isinstance(default, bool):
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                type=lambda s: s == "1",
                default=default,
                help="1 or 0",
            )
        elif name in ("data", "out"):
            parser.add_argument(f"--{name}", required=True)
        else:
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(Config(**vars(args)))


if __name__ == "__main__":
    main()
