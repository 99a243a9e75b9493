"""Settings, read from `RAG_*` environment variables or a `.env` file.

The variables stay flat (`RAG_READER_PASSAGES`); each pipeline component takes its group
(`settings.retrieval`, `settings.reader`, `settings.llm`), never the whole Settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.types import AnswerMode

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MAX_QUESTION_CHARS = 2_000
MAX_TOP_K = 50
BACKENDS = ("onnx-int8", "onnx", "torch")
# int8 halves the model's time per text for a SQuAD R@5 within 0.01 of fp32 (README).
DEFAULT_BACKEND = "onnx-int8"


@dataclass(frozen=True)
class RetrievalSettings:
    dense_weight: float = 0.7
    title_weight: float = 0.2
    candidates: int = 100


@dataclass(frozen=True)
class ReaderSettings:
    threshold: float | None = None  # None: the one calibrated with the model
    passages: int = 2
    window_chars: int = 0
    stop_confidence: float = 0.9


@dataclass(frozen=True)
class LlmSettings:
    base_url: str | None = None
    model: str = "rag-llm"
    api_key: str | None = None
    timeout_seconds: float = 60.0
    retries: int = 1
    max_tokens: int = 200
    passages: int = 3
    support_threshold: float = 0.5


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    index_dir: Path = Field(Path("index/default"), description="Where the built index lives.")
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL with pgvector to keep the index in, shared by every replica "
        "(postgresql://user@host:port/db); unset: the embedded store in index_dir.",
    )
    database_read_url: SecretStr | None = Field(
        None,
        description="A streaming standby of that database to read from; writes still go to "
        "database_url.",
    )
    sources: list[Path] = Field(
        default_factory=lambda: [Path("seeds/articles")],
        description="Files or folders synced into the index when `rag serve` starts.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or path; the default ships in a package.",
    )
    chunk_size: int = Field(800, ge=100, le=20_000, description="Characters per chunk.")
    chunk_overlap: int = Field(120, ge=0, le=5_000, description="Characters shared by neighbours.")
    title_weight: float = Field(
        0.2, ge=0.0, le=1.0, description="Share of a passage's dense score from its title."
    )
    dense_weight: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Share of a passage's score from dense similarity "
        "(the rest is BM25, scaled to the best candidate's).",
    )
    retrieval_candidates: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Passages each search proposes (BM25's best, and the chunks of twice as "
        "many nearest sentences) before they are scored together.",
    )
    embed_batch_size: int = Field(
        16,
        ge=1,
        le=4096,
        description="Texts per model call when indexing; with length-sorted batches, small "
        "ones waste least on padding and stay in cache (bench/results/ingest*.json).",
    )
    embed_backend: Literal[BACKENDS] = Field(
        DEFAULT_BACKEND,
        description="onnx-int8: the model exported locally, quantised to 8-bit and run by "
        "onnxruntime; onnx: the same unquantised (torch's vectors exactly, half the speed); "
        "torch: sentence-transformers itself.",
    )
    model_cache_dir: Path = Field(Path("index/models"), description="Where exports are cached.")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="Passages returned by /ask and /search.")
    watch_seconds: float = Field(
        2.0,
        ge=0.0,
        le=3600.0,
        description="How often the server looks for a commit another process made (`rag "
        "ingest` into the index it serves) and swaps it in; 0 turns this off.",
    )
    answer_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Below this confidence (the calibrated probability that the answer is "
        "right) the service abstains; unset: the threshold calibrated with the reader.",
    )
    reader_passages: int = Field(
        2, ge=1, le=MAX_TOP_K, description="Top passages the reader reads for an answer."
    )
    reader_window_chars: int = Field(
        0,
        ge=0,
        le=20_000,
        description="Characters the reader reads around a passage's best sentence (whole "
        "sentences); 0 reads the whole passage.",
    )
    reader_stop_confidence: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="When the top passage's answer is this sure, the other passages are not "
        "read (1.0: always read them all).",
    )
    example_questions: list[str] = Field(
        default_factory=lambda: [
            "When is the first vehicle expected?",
            "Who is Xiaomi negotiating with?",
            "How much did Great Wall's Hong Kong shares rise?",
        ],
        description="Offered on the chat page's empty screen (about the seed article by "
        "default; set your own for your corpus, [] for none).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (the widget); none by default.",
    )
    api_key: SecretStr | None = Field(
        None, description="Bearer key for writes (and reads, with protect_reads)."
    )
    protect_reads: bool = Field(False, description="Require the API key for reads too.")
    allow_unauthenticated_writes: bool = Field(
        False, description="Accept writes without a key (only when no api_key is set)."
    )
    max_body_bytes: int = Field(10_000_000, ge=1_000, description="Largest request or upload.")
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests per client per minute; 0 turns rate limiting off."
    )
    client_address_header: str | None = Field(
        None,
        description="Header a trusted reverse proxy sets to the client's address (e.g. "
        "X-Forwarded-For: its first entry counts); unset: the connection's address. A client "
        "is that address, or the API key when it sends the right one.",
    )
    answer_mode: AnswerMode = Field(
        AnswerMode.EXTRACTIVE, description="Default answer mode; generative needs llm_base_url."
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible server for generated answers (e.g. llama.cpp)."
    )
    llm_model: str = Field("rag-llm", description="Model name to ask that server for.")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for the LLM server.")
    llm_timeout_seconds: float = Field(
        60.0, gt=0, le=600, description="Longest a generation may take."
    )
    llm_retries: int = Field(1, ge=0, le=5, description="Retries of a failed generation.")
    llm_max_tokens: int = Field(200, ge=16, le=4096, description="Longest generated reply.")
    llm_passages: int = Field(3, ge=1, le=20, description="Passages put in the prompt.")
    support_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Least cosine between a generated sentence and a sentence it cites.",
    )
    host: str = Field("127.0.0.1", description="Where `rag serve` listens.")
    port: int = Field(8000, ge=1, le=65_535, description="The port `rag serve` listens on.")

    @field_validator("api_key", "llm_api_key", mode="before")
    @classmethod
    def blank_is_unset(cls, value: object) -> object:
        """`RAG_API_KEY=` is no key at all, not the empty key that a bare request matches."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def reads_protected_by_a_key(self) -> Settings:
        """Protected reads need a key to check: without one they would be silently open."""
        if self.protect_reads and self.api_key is None:
            raise ValueError(
                "RAG_PROTECT_READS=true needs RAG_API_KEY (the key readers must send); "
                "set it, or RAG_PROTECT_READS=false"
            )
        return self

    @property
    def retrieval(self) -> RetrievalSettings:
        return RetrievalSettings(self.dense_weight, self.title_weight, self.retrieval_candidates)

    @property
    def reader(self) -> ReaderSettings:
        return ReaderSettings(
            self.answer_threshold,
            self.reader_passages,
            self.reader_window_chars,
            self.reader_stop_confidence,
        )

    @property
    def llm(self) -> LlmSettings:
        return LlmSettings(
            self.llm_base_url,
            self.llm_model,
            self.llm_api_key.get_secret_value() if self.llm_api_key else None,
            self.llm_timeout_seconds,
            self.llm_retries,
            self.llm_max_tokens,
            self.llm_passages,
            self.support_threshold,
        )
