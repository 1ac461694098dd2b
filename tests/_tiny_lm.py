"""A tiny random-init Llama with a character tokenizer, saved as a Hugging Face folder.

Rollout/evaluation tests need a real HF causal LM but no downloaded weights; a random model
gives varied, fast outputs. Shared by the evaluation-side tests (imported by name: pytest puts
tests/ on sys.path).
"""

from __future__ import annotations

import string
from pathlib import Path

CHARS = string.ascii_letters + string.digits + string.punctuation + " \n"
SPECIALS = ["<pad>", "<eos>", "<unk>"]


def make_char_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(CHARS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>",
                                   unk_token="<unk>")


def make_tiny_lm(folder: Path, *, seed: int = 0, eos_scale: float = 1.0) -> Path:
    """Save a 2-layer Llama (hidden 32) + char tokenizer into `folder`; return the folder.

    `eos_scale` multiplies the EOS row of the output layer: 0 means responses never stop,
    larger values make rows stop early (mixed finish reasons in one batch).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_char_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)  # sharper distributions: varied but not uniform text
        model.lm_head.weight[tokenizer.eos_token_id].mul_(eos_scale)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)
