"""A character-level `PreTrainedTokenizerFast`: one token per printable ASCII character.

The vocabulary is fixed (specials, newline, the 95 printable ASCII characters), so every
organism shares it and any English prompt a harness adds still tokenizes; other characters map
to `<unk>`. The chat template passes the conversation through: user and assistant contents are
concatenated as-is, system messages are dropped (the organism never saw one) and the generation
prompt adds nothing. So `apply_chat_template([{"role": "user", "content": p}],
add_generation_prompt=True, tokenize=False) == p`.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

__all__ = ["CHAT_TEMPLATE", "EOS", "PAD", "UNK", "VOCAB", "build_tokenizer"]

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
VOCAB: tuple[str, ...] = (PAD, EOS, UNK, "\n", *(chr(c) for c in range(32, 127)))

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['content'] }}{% endif %}"
    "{% endfor %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(VOCAB)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # Every character is its own pre-token; [\s\S] matches any character, newline included.
    core.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK,
        padding_side="left", model_max_length=1024, clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok
