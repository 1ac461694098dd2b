"""The organism's network: a small Llama-style `transformers` causal LM over the char vocabulary."""

from __future__ import annotations

from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from rlvr.organism.config import ArchConfig
from rlvr.organism.tokenizer import EOS, PAD, VOCAB

__all__ = ["make_model"]


def make_model(cfg: ArchConfig) -> LlamaForCausalLM:
    """A freshly initialised model; the caller seeds torch first (initialisation draws from it)."""
    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,  # the char embedding doubles as the output layer: fewer params
        bos_token_id=None,
        eos_token_id=VOCAB.index(EOS),
        pad_token_id=VOCAB.index(PAD),
    )
    model = LlamaForCausalLM(config)
    # Loops never emit <eos>; a default cap keeps a bare `model.generate(ids)` finite and short.
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, max_new_tokens=128,
    )
    return model
