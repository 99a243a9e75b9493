"""Export a trained reader to int8 ONNX with its tokenizer, atomically, and print its SHA-256.

    python -m train.export_reader --trained build/reader [--out rag/assets/reader]

Takes build/reader/final when training finished, else the latest checkpoint (for a look
mid-run). The SHA-256 goes into rag/models/reader.py (MODEL_SHA256) when the model is committed.
`--fused` fuses each layer's operators first (a little faster; measured in README "The reader").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from rag.digest import file_digest
from rag.models.onnx_runtime import quantize_int8
from rag.models.reader import MODEL_FILE
from train.reader import shrink


def load_trained(trained: Path, eager_attention: bool = False):
    import torch
    from transformers import AutoModelForQuestionAnswering

    from rag.models.embeddings import resolve_model

    # eager attention traces to the MatMul/Softmax pattern that onnxruntime fuses (see `fuse`)
    eager = {"attn_implementation": "eager"} if eager_attention else {}
    if (trained / "final").is_dir():
        return AutoModelForQuestionAnswering.from_pretrained(trained / "final", **eager), "final"
    config = json.loads((trained / "config.json").read_text())
    model = shrink(
        AutoModelForQuestionAnswering.from_pretrained(resolve_model("all-MiniLM-L6-v2"), **eager),
        config.get("keep_layers", ""),
    )
    state = torch.load(trained / "checkpoint.pt", weights_only=False)
    model.load_state_dict(state["model"])
    return model, f"checkpoint at step {state['step']}"


def training_record(trained: Path) -> dict:
    """The run's settings and size, how it ended (loss, speed), and the stage it started from."""
    summary_path = trained / "summary.json"
    training = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    log_path = trained / "train.jsonl"
    logged = log_path.read_text().splitlines() if log_path.is_file() else []
    if logged:
        training["last_log"] = json.loads(logged[-1])
    started_from = training.get("config", {}).get("init_from")
    if started_from:
        training["previous_stage"] = training_record(Path(started_from).parent)
    return training


def fuse(fp32: Path, config) -> Path:
    """The graph with each layer's attention, GELU and layer norms as single onnxruntime
    operators: about a tenth less time per passage; the answers differ only as much as
    int8 rounding moves them (so the calibration must be fitted again)."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = fp32.with_name("fused.onnx")
    model = optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=1,
    )
    if model.get_fused_operator_statistics()["Attention"] != config.num_hidden_layers:
        raise RuntimeError(
            f"attention was not fused in {fp32}: {model.get_fused_operator_statistics()}"
        )
    model.save_model_to_file(str(fused))
    return fused


def export(trained: Path, out: Path, fused: bool = False) -> str:
    import torch
    from transformers import AutoTokenizer

    from rag.models.embeddings import resolve_model

    model, source = load_trained(trained, eager_attention=fused)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("all-MiniLM-L6-v2"))

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            output = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return output.start_logits, output.end_logits

    sample = tokenizer(["a question?"], ["and a passage."], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".reader-", dir=out.parent))
    staging.chmod(0o755)
    try:
        fp32 = staging / "fp32.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Logits(),
                tuple(sample[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["start_logits", "end_logits"],
                dynamic_axes={
                    n: {0: "batch", 1: "tokens"} for n in [*names, "start_logits", "end_logits"]
                },
                opset_version=17,
                dynamo=False,
            )
        graph = fuse(fp32, model.config) if fused else fp32
        quantize_int8(graph, staging / MODEL_FILE)
        graph.unlink()
        fp32.unlink(missing_ok=True)
        tokenizer.save_pretrained(staging)
        training = training_record(trained)
        digest = file_digest(staging / MODEL_FILE)
        meta = {"source": source, "sha256": digest, "training": training}
        previous = out / "reader.json"
        if previous.is_file():  # keep the calibration fitted for this model, if it is this one
            old = json.loads(previous.read_text())
            if old.get("sha256") == digest and "calibration" in old:
                meta["calibration"] = old["calibration"]
        (staging / "reader.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", type=Path, default=Path("build/reader"))
    parser.add_argument("--out", type=Path, default=Path("rag/assets/reader"))
    parser.add_argument(
        "--fused",
        action="store_true",
        help="fuse attention, GELU and layer norms first (faster; not the committed model)",
    )
    args = parser.parse_args()
    digest = export(args.trained, args.out, args.fused)
    print(f"{args.out / MODEL_FILE}  sha256 {digest}")


if __name__ == "__main__":
    main()
