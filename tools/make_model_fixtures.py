#!/usr/bin/env python3
"""Write the Hugging Face reference fixtures under tests/fixtures/models/.

Three tiny, randomly initialised models (no hub access, nothing pretrained):

  gpt2   GPT2LMHeadModel                 (LayerNorm, GELU-tanh, learned positions, tied head)
  llama  LlamaForCausalLM                (RMSNorm, SwiGLU, RoPE, grouped-query attention)
  bert   BertForSequenceClassification   (post-LN encoder, erf GELU, pooler, classifier)

For each model the script writes, into tests/fixtures/models/<name>/:

  model.safetensors, config.json, generation_config.json (decoders)
      exactly what `model.save_pretrained(dir)` writes for the float32 model;
  reference.safetensors
      inputs, float64 outputs, a scalar loss, float64 gradients of every named parameter,
      and (decoders) a greedy-generation reference.

The float32 weights are converted to float64 (exactly) and every reference is computed in
float64. Three spots of HF's LLaMA code round through float32 even in a float64 model
(RMSNorm, RoPE's cos/sin, the eager softmax); they are patched to stay in float64 while the
references are computed (see `_float64_exact`), and a check confirms that the stock HF code,
in float32, agrees with the float64 references to float32 accuracy.

Departures from HF's defaults (all visible in config.json): initializer_range 0.2 (not
0.02), seeded N(0, 0.02) noise on every norm weight/bias and every bias, GPT-2 bos/eos 95,
BERT pad_token_id null (no padding_idx row); attention is always "eager".

Every fixture is also checked inside this script: an independent plain-torch
re-implementation of each model (written from the formulas, not from HF's modules) must
match HF to 1e-10, a second model loaded back from the written model.safetensors must
reproduce the logits bit for bit, gradients are checked by central finite differences, and
the generation log-probs by a full forward without a KV cache. See tools/README.md for how
to install and run, and tests/fixtures/models/README.md for what every tensor means.

Usage:  python tools/make_model_fixtures.py [--out tests/fixtures/models]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import shutil
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import safetensors  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)
from transformers.models.llama import modeling_llama  # noqa: E402

EXPECTED_VERSIONS = {"torch": "2.15.0", "transformers": "5.23.0", "safetensors": "0.8.0"}

B, T = 2, 12  # batch and sequence length of the forward/backward references
VOCAB = 96
N_PAD = 3  # padded positions in row 1
PAD_ID = 0  # token id written into padded positions (and generate()'s pad_token_id)
GEN_PROMPT_LENS = (5, 8)  # generation prompts: row 0 has 5 tokens, row 1 has 8
GEN_NEW_TOKENS = 6
NOISE_STD = 0.02  # added to every norm weight/bias and every linear/Conv1D bias
# HF's initializer_range (std of every weight matrix and embedding). HF's default, 0.02, is
# meant for wide models: at width 32 it makes every attention near-uniform, so the query/key
# gradients come out ~1e-6 and a broken q/k backward would hide under float32 tolerances.
INIT_STD = 0.2

SEEDS = {"gpt2": 1001, "llama": 2002, "bert": 3003}


# ----------------------------------------------------------------------------------------
# Model construction
# ----------------------------------------------------------------------------------------

def make_config(name: str):
    if name == "gpt2":
        return GPT2Config(
            vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4,
            activation_function="gelu_new", layer_norm_epsilon=1e-5,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            # GPT-2's own eos/bos is its last token (50256); mirror that in the tiny vocab
            # (the default 50256 is outside a 96-token vocabulary).
            bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1,
            attn_implementation="eager", initializer_range=INIT_STD,
        )
    if name == "llama":
        return LlamaConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
            attention_bias=False, mlp_bias=False, attention_dropout=0.0,
            attn_implementation="eager", initializer_range=INIT_STD,
        )
    if name == "bert":
        return BertConfig(
            vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
            hidden_act="gelu", layer_norm_eps=1e-12, num_labels=2,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            # BERT's default pad_token_id=0 makes nn.Embedding(padding_idx=0): row 0 is
            # initialised to zero and never receives a gradient. Turned off so that every
            # embedding row is a plain, trainable row (padding is carried by the mask).
            pad_token_id=None,
            attn_implementation="eager", initializer_range=INIT_STD,
        )
    raise ValueError(name)


MODEL_CLASSES = {"gpt2": GPT2LMHeadModel, "llama": LlamaForCausalLM, "bert": BertForSequenceClassification}

NORM_TYPES = (torch.nn.LayerNorm, modeling_llama.LlamaRMSNorm)


def build_model(name: str):
    """float32 model: HF's seeded init, then seeded noise on norm params and all biases."""
    torch.manual_seed(SEEDS[name])
    model = MODEL_CLASSES[name](make_config(name))
    model.eval()
    gen = torch.Generator().manual_seed(SEEDS[name] + 1)
    noisy = set()
    for mod_name, mod in model.named_modules():
        for p_name, p in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if isinstance(mod, NORM_TYPES) or p_name == "bias":
                noisy.add(full)
    with torch.no_grad():
        for full, p in model.named_parameters():  # deterministic order
            if full in noisy:
                p.add_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * NOISE_STD)
    assert model.config._attn_implementation == "eager"
    return model


# ----------------------------------------------------------------------------------------
# float64-exact patches of HF LLaMA (active only while computing references)
# ----------------------------------------------------------------------------------------

def _rmsnorm_forward_f64(self, hidden_states):
    if hidden_states.dtype != torch.float64:
        return _ORIG["rms"](self, hidden_states)
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


@torch.no_grad()
def _rotary_forward_f64(self, x, position_ids):
    if x.dtype != torch.float64:
        return _ORIG["rope"](self, x, position_ids)
    assert self.rope_type == "default"
    base = self.config.rope_parameters["rope_theta"]
    dim = getattr(self.config, "head_dim", None) or self.config.hidden_size // self.config.num_attention_heads
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = position_ids[..., None].to(torch.float64) * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


def _llama_eager_attention_f64(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    if query.dtype != torch.float64:
        return _ORIG["attn"](module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    key_states = modeling_llama.repeat_kv(key, module.num_key_value_groups)
    value_states = modeling_llama.repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = torch.softmax(attn_weights, dim=-1)  # HF: softmax in float32, then cast back
    attn_output = torch.matmul(attn_weights, value_states).transpose(1, 2).contiguous()
    return attn_output, attn_weights


_ORIG = {
    "rms": modeling_llama.LlamaRMSNorm.forward,
    "rope": modeling_llama.LlamaRotaryEmbedding.forward,
    "attn": modeling_llama.eager_attention_forward,
}


@contextlib.contextmanager
def _float64_exact():
    modeling_llama.LlamaRMSNorm.forward = _rmsnorm_forward_f64
    modeling_llama.LlamaRotaryEmbedding.forward = _rotary_forward_f64
    modeling_llama.eager_attention_forward = _llama_eager_attention_f64
    try:
        yield
    finally:
        modeling_llama.LlamaRMSNorm.forward = _ORIG["rms"]
        modeling_llama.LlamaRotaryEmbedding.forward = _ORIG["rope"]
        modeling_llama.eager_attention_forward = _ORIG["attn"]


# ----------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------

def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def make_inputs(name: str) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(SEEDS[name] + 2)
    ids = torch.randint(0, VOCAB, (B, T), generator=gen, dtype=torch.int64)
    mask = torch.ones(B, T, dtype=torch.int64)
    if name == "bert":
        mask[1, T - N_PAD:] = 0  # right padding
    else:
        mask[1, :N_PAD] = 0  # left padding
    ids = ids.masked_fill(mask == 0, PAD_ID)
    out = {"input_ids": ids, "attention_mask": mask}
    if name == "bert":
        tt = torch.zeros(B, T, dtype=torch.int64)
        tt[0, 6:] = 1
        out["token_type_ids"] = tt
        out["loss_weights"] = torch.randn(B, 2, generator=gen, dtype=torch.float64)
    else:
        out["position_ids"] = positions_from_mask(mask)
        out["loss_weights"] = torch.randn(B, T - 1, generator=gen, dtype=torch.float64)
    return out


def model_kwargs(name: str, inp: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    kw = {"input_ids": inp["input_ids"], "attention_mask": inp["attention_mask"]}
    if name == "bert":
        kw["token_type_ids"] = inp["token_type_ids"]
    else:
        kw["position_ids"] = inp["position_ids"]
    return kw


# ----------------------------------------------------------------------------------------
# Forward, loss, gradients
# ----------------------------------------------------------------------------------------

def final_norm(model, name):
    return {"gpt2": lambda m: m.transformer.ln_f, "llama": lambda m: m.model.norm}[name](model)


def forward(model, name: str, inp: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF forward; returns logits, last_hidden_state (and the final norm's input for decoders)."""
    captured = {}
    handle = None
    if name != "bert":
        handle = final_norm(model, name).register_forward_hook(
            lambda mod, args, out: captured.__setitem__("pre_norm", args[0]))
    try:
        out = model(**model_kwargs(name, inp), output_hidden_states=True, use_cache=False)
    finally:
        if handle is not None:
            handle.remove()
    res = {"logits": out.logits, "last_hidden_state": out.hidden_states[-1]}
    if name == "bert":
        # the pooler output, recomputed from HF's own pooler module
        res["pooler_output"] = model.bert.pooler(out.hidden_states[-1])
    else:
        res["hidden_pre_final_norm"] = captured["pre_norm"]
    return res


def decoder_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    lp = torch.log_softmax(logits[:, :-1], dim=-1)
    return lp.gather(-1, ids[:, 1:, None]).squeeze(-1)


def loss_mask(mask: torch.Tensor) -> torch.Tensor:
    return mask[:, :-1] * mask[:, 1:]


def scalar_loss(name: str, outs: dict[str, torch.Tensor], inp: dict[str, torch.Tensor]) -> torch.Tensor:
    w = inp["loss_weights"]
    if name == "bert":
        return (w * torch.log_softmax(outs["logits"], dim=-1)).sum()
    lp = decoder_logprobs(outs["logits"], inp["input_ids"])
    return (w * lp * loss_mask(inp["attention_mask"]).to(lp.dtype)).sum()


def loss_of(model, name, inp) -> torch.Tensor:
    return scalar_loss(name, forward(model, name, inp), inp)


# ----------------------------------------------------------------------------------------
# Independent plain-torch re-implementations (float64), used only as a check
# ----------------------------------------------------------------------------------------

def _attend(q, k, v, allowed):
    """q (B,H,T,D), k/v (B,H,S,D), allowed (B,1|H,T,S) bool.

    A query row with no allowed key (a left-padding position of a decoder) attends uniformly
    to ALL S keys, future ones included: that is what HF's eager path computes, since its
    additive mask is finfo(dtype).min and min + score rounds to exactly min for every key.
    """
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    none_allowed = ~allowed.any(-1, keepdim=True)
    s = s.masked_fill(~allowed, float("-inf"))
    s = torch.where(none_allowed, torch.zeros_like(s), s)
    return torch.softmax(s, dim=-1) @ v


def _causal_allowed(mask):
    t = mask.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    return (causal[None, None] & mask.bool()[:, None, None, :])


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance
    return (x - mu) / torch.sqrt(var + eps) * w + b


def manual_gpt2(sd, cfg, ids, mask, pos):
    C, H = cfg.n_embd, cfg.n_head
    D = C // H
    eps = cfg.layer_norm_epsilon
    x = sd["transformer.wte.weight"][ids] + sd["transformer.wpe.weight"][pos]
    allowed = _causal_allowed(mask)
    for l in range(cfg.n_layer):
        p = f"transformer.h.{l}."
        h = _layer_norm(x, sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], eps)
        qkv = h @ sd[p + "attn.c_attn.weight"] + sd[p + "attn.c_attn.bias"]  # Conv1D: (in, out)
        q, k, v = (t.reshape(B, -1, H, D).transpose(1, 2) for t in qkv.split(C, dim=-1))
        o = _attend(q, k, v, allowed).transpose(1, 2).reshape(B, -1, C)
        x = x + o @ sd[p + "attn.c_proj.weight"] + sd[p + "attn.c_proj.bias"]
        h = _layer_norm(x, sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], eps)
        u = h @ sd[p + "mlp.c_fc.weight"] + sd[p + "mlp.c_fc.bias"]
        u = 0.5 * u * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u ** 3)))
        x = x + u @ sd[p + "mlp.c_proj.weight"] + sd[p + "mlp.c_proj.bias"]
    x = _layer_norm(x, sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"], eps)
    return x @ sd["transformer.wte.weight"].T  # tied head


def manual_llama(sd, cfg, ids, mask, pos):
    C, H, KV = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads
    D = C // H
    eps = cfg.rms_norm_eps

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w

    inv_freq = cfg.rope_parameters["rope_theta"] ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = pos[..., None].double() * inv_freq  # (B, T, D/2)
    cos, sin = ang.cos()[:, None], ang.sin()[:, None]  # (B, 1, T, D/2)

    def rope(x):  # x (B, H, T, D); channel i pairs with i + D/2
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    x = sd["model.embed_tokens.weight"][ids]
    allowed = _causal_allowed(mask)
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        h = rms(x, sd[p + "input_layernorm.weight"])
        q = (h @ sd[p + "self_attn.q_proj.weight"].T).reshape(B, -1, H, D).transpose(1, 2)
        k = (h @ sd[p + "self_attn.k_proj.weight"].T).reshape(B, -1, KV, D).transpose(1, 2)
        v = (h @ sd[p + "self_attn.v_proj.weight"].T).reshape(B, -1, KV, D).transpose(1, 2)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(H // KV, dim=1)  # query head h uses kv head h // (H / KV)
        v = v.repeat_interleave(H // KV, dim=1)
        o = _attend(q, k, v, allowed).transpose(1, 2).reshape(B, -1, C)
        x = x + o @ sd[p + "self_attn.o_proj.weight"].T
        h = rms(x, sd[p + "post_attention_layernorm.weight"])
        g = h @ sd[p + "mlp.gate_proj.weight"].T
        u = h @ sd[p + "mlp.up_proj.weight"].T
        x = x + (F.silu(g) * u) @ sd[p + "mlp.down_proj.weight"].T
    x = rms(x, sd["model.norm.weight"])
    return x @ sd["lm_head.weight"].T


def manual_bert(sd, cfg, ids, mask, tt):
    C, H = cfg.hidden_size, cfg.num_attention_heads
    D = C // H
    eps = cfg.layer_norm_eps

    def lin(x, p):
        return x @ sd[p + ".weight"].T + sd[p + ".bias"]

    def ln(x, p):
        return _layer_norm(x, sd[p + ".weight"], sd[p + ".bias"], eps)

    pos = torch.arange(ids.shape[1])
    x = (sd["bert.embeddings.word_embeddings.weight"][ids]
         + sd["bert.embeddings.token_type_embeddings.weight"][tt]
         + sd["bert.embeddings.position_embeddings.weight"][pos][None])
    x = ln(x, "bert.embeddings.LayerNorm")
    allowed = mask.bool()[:, None, None, :]  # bidirectional, padded keys masked
    for l in range(cfg.num_hidden_layers):
        p = f"bert.encoder.layer.{l}."
        q, k, v = (lin(x, p + f"attention.self.{n}").reshape(B, -1, H, D).transpose(1, 2)
                   for n in ("query", "key", "value"))
        o = _attend(q, k, v, allowed).transpose(1, 2).reshape(B, -1, C)
        x = ln(x + lin(o, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        u = lin(x, p + "intermediate.dense")
        u = 0.5 * u * (1.0 + torch.erf(u / math.sqrt(2.0)))  # exact (erf) GELU
        x = ln(x + lin(u, p + "output.dense"), p + "output.LayerNorm")
    pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
    return lin(pooled, "classifier"), x, pooled


# ----------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------

def make_gen_prompts(name: str):
    gen = torch.Generator().manual_seed(SEEDS[name] + 3)
    L = max(GEN_PROMPT_LENS)
    ids = torch.full((B, L), PAD_ID, dtype=torch.int64)
    mask = torch.zeros(B, L, dtype=torch.int64)
    for b, n in enumerate(GEN_PROMPT_LENS):
        ids[b, L - n:] = torch.randint(0, VOCAB, (n,), generator=gen, dtype=torch.int64)
        mask[b, L - n:] = 1
    return ids, mask


def run_generate(model, ids, mask, eos):
    gc = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=GEN_NEW_TOKENS,
                          pad_token_id=PAD_ID, eos_token_id=eos, bos_token_id=None,
                          return_dict_in_generate=True, output_scores=True, output_logits=True)
    with torch.no_grad():
        return model.generate(input_ids=ids, attention_mask=mask, generation_config=gc)


def generate_reference(model, name):
    ids, mask = make_gen_prompts(name)
    eos = model.config.eos_token_id
    out = run_generate(model, ids, mask, eos)
    new = out.sequences[:, ids.shape[1]:]
    if (new == eos).any():  # pick the smallest id never generated, so no row stops early
        eos = next(t for t in range(VOCAB) if t != PAD_ID and not (new == t).any())
        out = run_generate(model, ids, mask, eos)
        new = out.sequences[:, ids.shape[1]:]
    assert new.shape == (B, GEN_NEW_TOKENS) and not (new == eos).any()
    # HF's generate() casts each step's logits to float32 (generation/utils.py), so
    # out.logits/out.scores are float32-rounded. The stored log-probs come from one float64
    # forward (no KV cache) over the whole returned sequence; the float32 step scores must
    # agree with them to float32 accuracy, and greedy's choices must be the float64 argmax.
    scores = torch.stack(out.scores, dim=1)  # (B, steps, V) processed scores
    logits32 = torch.stack(out.logits, dim=1)  # raw logits
    assert torch.equal(logits32, scores), "greedy run applied a logits processor"
    assert torch.equal(scores.argmax(-1), new), "greedy tokens are not the argmax"
    lp_scores = torch.log_softmax(scores.double(), dim=-1).gather(-1, new[..., None]).squeeze(-1)

    full_mask = torch.cat([mask, torch.ones_like(new)], dim=1)
    full = {"input_ids": out.sequences, "attention_mask": full_mask,
            "position_ids": positions_from_mask(full_mask)}
    with torch.no_grad():
        full_logits = forward(model, name, full)["logits"]
    step_logits = full_logits[:, ids.shape[1] - 1:-1]  # logits that chose each new token
    assert torch.equal(step_logits.argmax(-1), new), f"{name}: float64 argmax differs from greedy"
    gen_lp = torch.log_softmax(step_logits, dim=-1).gather(-1, new[..., None]).squeeze(-1)
    err = (lp_scores - gen_lp).abs().max().item()
    assert err < 1e-5, f"{name}: generate() scores vs float64 forward log-probs differ by {err}"
    top2 = step_logits.topk(2, dim=-1).values
    margin = (top2[..., 0] - top2[..., 1]).min().item()

    return {
        "gen.prompt_ids": ids,
        "gen.prompt_mask": mask,
        "gen.output_ids": out.sequences.clone(),
        "gen.logprobs": gen_lp.clone(),
        "gen.eos_token_id": torch.tensor(eos, dtype=torch.int64),
    }, margin


# ----------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------

def check_finite_differences(model, name, inp, grads):
    """Central differences in float64: a random direction over all parameters, plus single
    elements of a few parameters."""
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(SEEDS[name] + 4)
    h = 1e-6

    def loss_at():
        with torch.no_grad():
            return loss_of(model, name, inp).item()

    # directional derivative along a random unit direction
    dirs = {n: torch.randn(p.shape, generator=gen, dtype=torch.float64) for n, p in params.items()}
    norm = math.sqrt(sum((d * d).sum().item() for d in dirs.values()))
    with torch.no_grad():
        for n, p in params.items():
            p.add_(dirs[n] * (h / norm))
    lp = loss_at()
    with torch.no_grad():
        for n, p in params.items():
            p.sub_(dirs[n] * (2 * h / norm))
    lm = loss_at()
    with torch.no_grad():
        for n, p in params.items():
            p.add_(dirs[n] * (h / norm))
    fd = (lp - lm) / (2 * h)
    an = sum((grads[n] * dirs[n]).sum().item() for n in params) / norm
    dir_err = abs(fd - an)
    assert dir_err <= 1e-7 * max(1.0, abs(an)), f"{name}: directional FD {fd} vs grad {an}"

    # single elements: first and last norm weight, a bias (if any), an embedding row entry
    picks = [n for n in params if "norm" in n.lower() or n.endswith("ln_1.weight") or n.endswith("ln_f.weight")][:2]
    picks += [n for n in params if n.endswith(".bias")][-1:]
    picks += [next(iter(params))]
    worst = 0.0
    for n in picks:
        p = params[n]
        flat = p.data.view(-1)
        for idx in (0, flat.numel() - 1):
            old = flat[idx].item()
            flat[idx] = old + h
            lp = loss_at()
            flat[idx] = old - h
            lm = loss_at()
            flat[idx] = old
            fd = (lp - lm) / (2 * h)
            an = grads[n].view(-1)[idx].item()
            err = abs(fd - an)
            worst = max(worst, err)
            assert err <= 1e-7 * max(1.0, abs(an)), f"{name}: FD {n}[{idx}] {fd} vs grad {an}"
    return dir_err, worst


def check_manual(name, model64, inp, outs):
    sd = {k: v.detach() for k, v in model64.state_dict().items()}
    cfg = model64.config
    ids, mask = inp["input_ids"], inp["attention_mask"]
    if name == "gpt2":
        logits = manual_gpt2(sd, cfg, ids, mask, inp["position_ids"])
    elif name == "llama":
        logits = manual_llama(sd, cfg, ids, mask, inp["position_ids"])
    else:
        logits, hidden, pooled = manual_bert(sd, cfg, ids, mask, inp["token_type_ids"])
        e1 = (logits - outs["logits"]).abs().max().item()
        e2 = (hidden - outs["last_hidden_state"]).abs().max().item()  # pads too (well defined)
        e3 = (pooled - outs["pooler_output"]).abs().max().item()
        assert max(e1, e2, e3) < 1e-10, f"bert: manual vs HF {e1} {e2} {e3}"
        return max(e1, e2, e3)
    # all positions, padded ones included (see _attend for HF's fully-masked-row behaviour)
    err = (logits - outs["logits"]).abs().max().item()
    assert err < 1e-10, f"{name}: manual vs HF logits differ by {err}"
    return err


def check_reload(name, out_dir, inp, ref_logits):
    """A fresh model from the written model.safetensors reproduces the logits exactly."""
    cls = MODEL_CLASSES[name]
    m = cls.from_pretrained(str(out_dir), attn_implementation="eager", dtype=torch.float32,
                            local_files_only=True)
    m.eval().double()
    with torch.no_grad(), _float64_exact():
        logits = forward(m, name, inp)["logits"]
    assert torch.equal(logits, ref_logits), f"{name}: reloaded model gives different logits"
    # stock HF code in float32 (no float64 patches) agrees to float32 accuracy
    m32 = cls.from_pretrained(str(out_dir), attn_implementation="eager", dtype=torch.float32,
                              local_files_only=True).eval()
    with torch.no_grad():
        l32 = forward(m32, name, inp)["logits"].double()
    valid = inp["attention_mask"].bool() if name != "bert" else torch.ones(B, dtype=torch.bool)
    err32 = (l32 - ref_logits)[valid].abs().max().item()
    assert err32 < 1e-5, f"{name}: float32 HF vs float64 reference differ by {err32}"
    return err32


# ----------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------

def make_one(name: str, root: Path) -> dict:
    out_dir = root / name
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    model = build_model(name)
    model.save_pretrained(str(out_dir))  # float32 weights + config.json (+ generation_config.json)

    model64 = build_model(name).double()  # same seeds -> same f32 weights, exactly widened
    for (n, p32), (_, p64) in zip(model.named_parameters(), model64.named_parameters()):
        assert torch.equal(p32.double(), p64), n

    inp = make_inputs(name)
    ref: dict[str, torch.Tensor] = {}
    for k in ("input_ids", "attention_mask", "position_ids", "token_type_ids", "loss_weights"):
        if k in inp:
            ref[k] = inp[k]

    info = {}
    with _float64_exact():
        model64.zero_grad(set_to_none=True)
        outs = forward(model64, name, inp)
        loss = scalar_loss(name, outs, inp)
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model64.named_parameters()}
        model64.zero_grad(set_to_none=True)

        # second forward must reproduce the first bit for bit
        with torch.no_grad():
            again = forward(model64, name, inp)
        assert torch.equal(again["logits"], outs["logits"]), f"{name}: forward not repeatable"

        info["manual_max_err"] = check_manual(name, model64, inp, {k: v.detach() for k, v in outs.items()})
        info["fd_dir_err"], info["fd_elem_err"] = check_finite_differences(model64, name, inp, grads)

        ref["logits"] = outs["logits"].detach()
        ref["last_hidden_state"] = outs["last_hidden_state"].detach()
        if name == "bert":
            ref["pooler_output"] = outs["pooler_output"].detach()
        else:
            ref["hidden_pre_final_norm"] = outs["hidden_pre_final_norm"].detach()
            ref["logprobs"] = decoder_logprobs(ref["logits"], inp["input_ids"])
            ref["loss_mask"] = loss_mask(inp["attention_mask"])
        ref["loss"] = loss.detach().reshape(())  # shape (): a 0-dim F64 tensor
        for n, g in grads.items():
            ref[f"grad.{n}"] = g

        if name != "bert":
            gen_ref, info["gen_min_margin"] = generate_reference(model64, name)
            ref.update(gen_ref)

    info["f32_vs_f64_logits"] = check_reload(name, out_dir, inp, ref["logits"])

    # every named parameter has a gradient; none is all zero
    names = [n for n, _ in model64.named_parameters()]
    for n in names:
        assert ref[f"grad.{n}"].abs().max() > 0, f"{name}: zero gradient for {n}"
    for k, v in ref.items():
        if v.is_floating_point():
            assert v.dtype == torch.float64 and torch.isfinite(v).all(), k
    ref = {k: v.contiguous() for k, v in sorted(ref.items())}
    save_file(ref, str(out_dir / "reference.safetensors"),
              # one key only: safetensors writes metadata keys in hash order, so several
              # keys would make the file bytes differ from run to run
              metadata={"generator": f"tools/make_model_fixtures.py model={name} "
                                     f"torch={torch.__version__.split('+')[0]} "
                                     f"transformers={transformers.__version__}"})
    info["loss"] = ref["loss"].item()
    info["params"] = names
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures/models"))
    ap.add_argument("--only", choices=sorted(MODEL_CLASSES), action="append")
    ap.add_argument("--allow-other-versions", action="store_true",
                    help="do not insist on the pinned torch/transformers/safetensors versions")
    args = ap.parse_args(argv)

    got = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
           "safetensors": safetensors.__version__}
    if got != EXPECTED_VERSIONS and not args.allow_other_versions:
        print(f"version mismatch: have {got}, pinned {EXPECTED_VERSIONS} "
              "(install tools/requirements.txt or pass --allow-other-versions)", file=sys.stderr)
        return 2

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in args.only or ["gpt2", "llama", "bert"]:
        info = make_one(name, root)
        summary[name] = info
        print(f"{name}: loss={info['loss']:.12g} manual_err={info['manual_max_err']:.2e} "
              f"fd_err(dir,elem)=({info['fd_dir_err']:.2e},{info['fd_elem_err']:.2e}) "
              f"f32_vs_f64={info['f32_vs_f64_logits']:.2e}"
              + (f" gen_min_margin={info['gen_min_margin']:.3e}" if "gen_min_margin" in info else ""))
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.name != "README.md":
            f.chmod(0o644)  # safetensors writes its files 0600
            h = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
            print(f"  {f.relative_to(root)}  {f.stat().st_size:>8} B  sha256:{h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
