"""Tiny random-weight models of each supported family (no downloads) and padded batches.

Shared by tests/neural/*; a uniquely named module (not `conftest`) so imports stay
unambiguous when other test folders have their own conftest.py.
"""
from __future__ import annotations

import torch

VOCAB = 64
HIDDEN = 16


def build_lm(family: str):
    import transformers as T
    common = dict(num_hidden_layers=3, hidden_size=HIDDEN, num_attention_heads=4, vocab_size=VOCAB,
                  intermediate_size=32, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if family == "gpt2":
        cfg = T.GPT2Config(n_layer=3, n_embd=HIDDEN, n_head=4, vocab_size=VOCAB, n_positions=32,
                           bos_token_id=1, eos_token_id=2)
    elif family == "gpt_neox":
        cfg = T.GPTNeoXConfig(**common, max_position_embeddings=32, rotary_pct=0.5)
    elif family == "llama":
        cfg = T.LlamaConfig(**common, num_key_value_heads=2, max_position_embeddings=32)
    elif family == "qwen2":
        cfg = T.Qwen2Config(**common, num_key_value_heads=2, max_position_embeddings=32)
    elif family == "mistral":
        cfg = T.MistralConfig(**common, num_key_value_heads=2, max_position_embeddings=32)
    elif family == "gemma":
        cfg = T.GemmaConfig(**common, num_key_value_heads=2, head_dim=4, max_position_embeddings=32)
    elif family == "gemma2":
        cfg = T.Gemma2Config(**common, num_key_value_heads=2, head_dim=4, max_position_embeddings=32,
                             sliding_window=4, final_logit_softcapping=5.0)
    elif family == "gemma3_text":
        cfg = T.Gemma3TextConfig(**common, num_key_value_heads=2, head_dim=4, max_position_embeddings=32,
                                 sliding_window=4)
    elif family == "qwen3":
        cfg = T.Qwen3Config(**common, num_key_value_heads=2, head_dim=4, max_position_embeddings=32)
    elif family == "granite":  # divides its logits by logits_scaling, which the cached path must too
        cfg = T.GraniteConfig(**common, num_key_value_heads=2, max_position_embeddings=32, logits_scaling=8.0,
                              residual_multiplier=0.5, embedding_multiplier=2.0)
    elif family == "phi3":
        cfg = T.Phi3Config(**common, num_key_value_heads=2, max_position_embeddings=32)
    elif family == "olmo2":
        cfg = T.Olmo2Config(**common, num_key_value_heads=2, max_position_embeddings=32)
    else:
        raise ValueError(family)
    torch.manual_seed(0)
    model = T.AutoModelForCausalLM.from_config(cfg).eval()
    # Random-init LMs have tiny weights; scale them up a bit so differences are visible.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(3.0)
    return model.requires_grad_(False)


LM_FAMILIES = ["gpt2", "gpt_neox", "llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "gemma3_text",
               "granite", "phi3", "olmo2"]


def make_batch(padding: str = "right", seed: int = 0, batch: int = 3, seq: int = 6):
    """Token batch whose rows have different lengths, padded on the given side."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    lengths = [seq - (i % 3) for i in range(batch)]
    for i, n in enumerate(lengths):
        if padding == "right":
            mask[i, n:] = 0
            ids[i, n:] = 0
        else:
            mask[i, : seq - n] = 0
            ids[i, : seq - n] = 0
    return {"input_ids": ids, "attention_mask": mask}, lengths
