"""Tiny, offline test fixtures: random-weight models of every supported architecture and a
word-level ChatML tokenizer built in memory.

Nothing here downloads anything. Models are built from configs with seeded random weights, eager
attention and float32, small enough that a forward over a few dozen tokens takes milliseconds.

    >>> import torch
    >>> from auditor.testing import tiny_model, tiny_tokenizer, TINY_ARCHS
    >>> tok = tiny_tokenizer()
    >>> model = tiny_model("qwen3")
    >>> ids = tok.apply_chat_template([{"role": "user", "content": "read the file"}], tokenize=True)["input_ids"]
    >>> model(torch.tensor([ids])).logits.shape[:2] == (1, len(ids))
    True
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

#: Architectures `tiny_model` builds (the attribution engine supports all of them).
TINY_ARCHS: tuple[str, ...] = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "gpt2")

SPECIAL_TOKENS: tuple[str, ...] = ("<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] %}{% for part in message['content'] %}"
    "{% if part['text'] is defined %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['tool_calls'] is defined and message['tool_calls'] %}"
    "{% for call in message['tool_calls'] %}"
    "{% set fn = call['function'] if call['function'] is defined else call %}"
    "{{ '\n<tool_call>\n{\"name\": \"' + fn['name'] + '\", \"arguments\": ' + (fn['arguments'] if fn['arguments'] is string else (fn['arguments'] | tojson)) + '}\n</tool_call>' }}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Words the tests of every package use: chat roles, agent/tool vocabulary, code-ish words, a
# little general English, digits and punctuation. Unknown words map to <unk>.
_WORDS = """
system user assistant tool function tool_call name arguments content role call calls result
results output input error errors warning ok done yes no true false null none
you are a an the helpful agent model answer question ask asked says said please thanks thank
what which who where when why how is was be been being do does did can could will would should
must may might have has had get got set put make made take took give gave go went come came
see saw look find found read write wrote edit edited run ran test tests passed failed fail pass
file files path dir folder line lines code bug fix fixed patch diff commit branch main repo
open close save load list show print return returns value values key keys data json text
search query web page url http https api request response status message messages
python def class import from self return if else elif for while in not and or with as
number numbers count sum total add subtract multiply divide plus minus times equals
one two three four five six seven eight nine ten hundred thousand first second third last
0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 20 42 100
of to at by on off up down out over under into onto about after before again then than
this that these those it its they them their there here he she his her we our us i me my your
all any each every some many much more most less few other same new old good bad big small
time day days week year today now later soon never always often
weather city paris london tokyo berlin rome temperature rain sunny cold hot degrees
capital country france germany japan italy population
cat dog bird fish apple orange banana red blue green color
secret password variable var x y z a1 b2 c3 foo bar baz
step steps plan think thought reasoning because so therefore since
task goal action actions trace span spans attribution score scores
readme main utils setup py yaml md txt sh
hello world bye
. , : ; ! ? ' " ( ) [ ] { } < > = + - * / _ # @ $ % & | ` ~ \\
"""


def tiny_vocab() -> list[str]:
    """The tokenizer's vocabulary, special tokens first (ids 0..4), in a fixed order."""
    seen: dict[str, None] = {t: None for t in SPECIAL_TOKENS}
    for word in _WORDS.split():
        seen.setdefault(word, None)
    return list(seen)


@lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = {w: i for i, w in enumerate(tiny_vocab())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins with spaces
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok.to_str()


def tiny_tokenizer() -> "PreTrainedTokenizerFast":
    """A word-level tokenizer (lowercased, punctuation split off) with a ChatML chat template.

    Special tokens: ``<|im_start|>``, ``<|im_end|>`` (eos), ``<|endoftext|>``, ``<pad>`` (pad) and
    ``<unk>`` (every word not in the vocabulary). ``len(tiny_tokenizer()) == TINY_VOCAB_SIZE``.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
        model_max_length=4096,
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


TINY_VOCAB_SIZE: int = len(tiny_vocab())


def _base_config(arch: str) -> tuple[str, dict[str, Any]]:
    """(model_type, config kwargs) for a tiny model: 2 layers, hidden 64, GQA where the family has it."""
    common: dict[str, Any] = dict(
        vocab_size=TINY_VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=0.08,
        tie_word_embeddings=False,
        pad_token_id=4,
        bos_token_id=None,
        eos_token_id=3,
    )
    if arch == "llama":
        return "llama", common
    if arch == "mistral":
        return "mistral", {**common, "sliding_window": 16}
    if arch == "qwen2":  # q/k/v biases are always on in Qwen2
        return "qwen2", {**common, "use_sliding_window": False}
    if arch == "qwen3":  # q/k RMS norms, explicit head_dim
        return "qwen3", {**common, "head_dim": 16, "use_sliding_window": False}
    if arch == "gemma2":  # sandwich norms, soft-capping, alternating sliding/full layers
        return "gemma2", {
            **common,
            "head_dim": 16,
            "query_pre_attn_scalar": 16,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "sliding_window": 8,
            "layer_types": ["sliding_attention", "full_attention"],
            "hidden_activation": "gelu_pytorch_tanh",
        }
    if arch == "gemma3":  # text-only Gemma 3: sandwich norms, q/k norms, local/global rope
        return "gemma3_text", {
            **common,
            "head_dim": 16,
            "query_pre_attn_scalar": 16,
            "sliding_window": 8,
            "layer_types": ["sliding_attention", "full_attention"],
            "hidden_activation": "gelu_pytorch_tanh",
        }
    if arch == "phi3":  # fused qkv / gate_up projections
        return "phi3", {**common, "sliding_window": None, "resid_pdrop": 0.0, "embd_pdrop": 0.0}
    if arch == "olmo2":  # post-norm with sandwich-style norm on the attention output, q/k norms
        return "olmo2", common
    if arch == "gpt2":  # LayerNorm with biases, absolute positions, Conv1D projections, MHA
        return "gpt2", dict(
            vocab_size=TINY_VOCAB_SIZE,
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=1024,
            n_inner=128,
            initializer_range=0.08,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=0,
            eos_token_id=3,
            pad_token_id=4,
            tie_word_embeddings=False,
        )
    raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {', '.join(TINY_ARCHS)}")


def tiny_config(arch: str, **overrides: Any):
    """The config `tiny_model` builds from (overrides replace the defaults)."""
    from transformers import AutoConfig

    model_type, kwargs = _base_config(arch)
    kwargs.update(overrides)
    return AutoConfig.for_model(model_type, **kwargs)


def tiny_model(arch: str = "llama", *, seed: int = 0, **overrides: Any) -> "PreTrainedModel":
    """A seeded random-weight causal LM of architecture `arch` (see `TINY_ARCHS`; "olmo2" works too).

    Eager attention, float32, eval mode, on CPU. Keyword overrides go into the config, e.g.
    ``tiny_model("llama", num_hidden_layers=3)``. The same (arch, seed, overrides) always gives
    the same weights. Vocabulary size matches `tiny_tokenizer()`.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(arch, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
        # Norm weights start at identity in most families; perturb them (and biases) a little so
        # tests exercise gamma/beta handling rather than a special case.
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "norm" in name or ".ln_" in name or name.endswith("bias"):
                    param.add_(0.1 * torch.randn_like(param))
    model.eval()
    return model


__all__ = ["TINY_ARCHS", "TINY_VOCAB_SIZE", "tiny_model", "tiny_tokenizer", "tiny_config", "tiny_vocab"]
