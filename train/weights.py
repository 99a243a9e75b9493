"""Carry a trained reader between machines (a lent GPU box and this one) in parts small enough
for the transfer, with the run's record (settings, log, held-out scores) beside them.

    python -m train.weights pack build/reader OUT_DIR      # on the GPU box
    python -m train.weights unpack OUT_DIR build/reader    # here; then train.export_reader

The weights travel in fp16 (half the size; the int8 export that ships rounds far more).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

PART_BYTES = 15 << 20
RECORD = ("summary.json", "train.jsonl")  # summary.json holds the settings


def pack(run: Path, out: Path) -> list[Path]:
    import torch
    from safetensors.torch import save

    from train.evaluate import load_model

    model = load_model(run / "final")
    state = {
        name: tensor.to(torch.float16).contiguous() for name, tensor in model.state_dict().items()
    }
    blob = save(state)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for n, begin in enumerate(range(0, len(blob), PART_BYTES)):
        parts.append(out / f"weights.part{n}")
        parts[-1].write_bytes(blob[begin : begin + PART_BYTES])
    for name in RECORD:
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    model.config.save_pretrained(out)
    return parts


def unpack(packed: Path, run: Path, encoder: Path | None = None) -> Path:
    """The run folder as training left it (`final` with the tokenizer), ready for export."""
    import torch
    from safetensors.torch import load
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

    parts = sorted(packed.glob("weights.part*"), key=lambda p: int(p.suffix[len(".part") :]))
    if not parts:
        raise SystemExit(f"no weights.part* in {packed}")
    state = load(b"".join(p.read_bytes() for p in parts))
    model = AutoModelForQuestionAnswering.from_config(AutoConfig.from_pretrained(packed))
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    if encoder is None:
        from rag.models.embeddings import resolve_model

        encoder = Path(resolve_model("all-MiniLM-L6-v2"))
    final = run / "final"
    model.save_pretrained(final)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(final)
    for name in RECORD:
        if (packed / name).is_file():
            shutil.copy(packed / name, run / name)
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["pack", "unpack"])
    parser.add_argument("source", type=Path, help="pack: the run folder; unpack: the parts")
    parser.add_argument("target", type=Path, help="pack: where the parts go; unpack: the run")
    args = parser.parse_args()
    if args.action == "pack":
        print("\n".join(str(p) for p in pack(args.source, args.target)))
    else:
        print(unpack(args.source, args.target))


if __name__ == "__main__":
    main()
