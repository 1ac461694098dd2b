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


# A newcomer's small model: 40 characters (no letters beyond those of \boxed and \frac, no
# unknown token), EOS = newline, and a 96-position context (GPT-2's learned positions index
# out of range past it).
SHORT_CHARS = "0123456789+-*/=()[]{}\\^_., :?!boxedfrac\n"
SHORT_CONTEXT = 96
_SHORT_CHAT = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"


def make_short_gpt2(folder: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer GPT-2 with a 96-position context and a 40-character tokenizer that has a
    chat template it cannot encode (its role markers and the CoT prompt's letters)."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    assert len(set(SHORT_CHARS)) == len(SHORT_CHARS) == 40
    core = Tokenizer(models.WordLevel({ch: i for i, ch in enumerate(SHORT_CHARS)}))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="\n")
    tokenizer.chat_template = _SHORT_CHAT
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(SHORT_CHARS), n_positions=SHORT_CONTEXT, n_embd=32,
                        n_layer=2, n_head=2, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)  # varied text; EOS is one token in 40, so rows stop
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)
