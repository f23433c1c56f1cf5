"""The one place where a classifier's tokenizer and model are loaded and made ready for batched inputs.

Encoder models (BERT, RoBERTa, MiniLM, ...) come as they are. Decoder-only models (GPT-2, Llama, Mistral, ...) often
ship a tokenizer without a padding token, and their sequence classifier reads the hidden state of the last token
that is not padding, found through ``config.pad_token_id``. :func:`prepare` therefore

- pads with the end-of-sequence token where the tokenizer has no padding token (what Hugging Face's own examples
  do; the attention mask hides the padding, and the classifier finds the last real token by that id),
- sets the model's ``pad_token_id`` to the tokenizer's, so the classifier's choice of token and the padding agree,
- pads on the right for decoder-only models: with causal attention no real token sees a padding token after it,
  and position ids (GPT-2's learned absolute positions included) are those of the unpadded text, so a text's
  logits do not depend on the batch it is in. Left padding shifts GPT-2's positions by the padding's width.

Every loader of a classifier or tagger goes through here (fine-tuning, evaluation, the attacks' victim, AT-IP's
workers, the LCA tagger and its activations). The start-up check (:func:`check_model_folder`) reads only
``config.json`` and the tokenizer's files: this module imports torch and transformers inside its functions only, so
the workflow can import it to build the DAG.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from advtrain.errors import ResourceError

#: Model types (config.json's ``model_type``) of decoder-only language models; any model whose ``architectures``
#: name a causal LM counts too. Their embeddings have no ``embeddings`` module (see ``adversarial_embedding.perturb``).
DECODER_ONLY_TYPES = frozenset({
    "gpt2", "openai-gpt", "gpt_neo", "gpt_neox", "gptj", "gpt_bigcode", "codegen", "ctrl", "bloom", "falcon",
    "opt", "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi", "phi3", "gemma",
    "gemma2", "gemma3_text", "olmo", "olmo2", "stablelm", "starcoder2", "persimmon", "mpt", "granite", "cohere",
    "biogpt",
})


def is_decoder_only(config: Mapping) -> bool:
    """Whether a model configuration (config.json's content, or ``PretrainedConfig.to_dict()``) is decoder-only."""
    if config.get("is_encoder_decoder"):
        return False
    if config.get("model_type") in DECODER_ONLY_TYPES:
        return True
    return any(str(a).endswith(("ForCausalLM", "LMHeadModel")) and not str(a).startswith(("Bert", "Roberta"))
               for a in config.get("architectures") or ())


def _token(value) -> str | None:
    """A special token as a tokenizer's files write it: a string, or ``{"content": ...}`` (AddedToken)."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _tokenizer_special_tokens(folder: Path) -> dict[str, str]:
    """{pad_token, eos_token: content} as the folder's tokenizer_config.json and special_tokens_map.json give them."""
    found: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the tokenizer config wins, as when loading
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in ("pad_token", "eos_token"):
            token = _token(data.get(key)) if isinstance(data, Mapping) else None
            if token:
                found[key] = token
    return found


def _perturb_site(part: Mapping) -> str | None:
    from advtrain.training.embedding_settings import DEFAULTS

    perturb = part.get("perturb")
    if perturb is None:
        perturb = DEFAULTS.get(part.get("kind"), {}).get("perturb")
    return perturb


def check_model_folder(path: str | Path, key: str, methods: Mapping[str, Mapping] | None = None) -> dict:
    """Stop before any job with what a model folder cannot do here; its config.json, or {} when unreadable.

    ``methods`` maps a method's name to its parts (``config["methods"]``, the selected ones): a decoder-only model
    cannot take ``perturb: embedding_output`` (it has no embedding layer apart from its token and position tables).
    A decoder-only model needs a padding token or an end-of-sequence token to pad with.
    """
    folder = Path(path)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # require_model_folder names a missing config.json
    if not isinstance(config, Mapping) or not is_decoder_only(config):
        return config if isinstance(config, Mapping) else {}
    kind = f"a decoder-only model ({config.get('model_type') or ', '.join(config.get('architectures') or ())})"
    tokens = _tokenizer_special_tokens(folder)
    if not tokens.get("pad_token") and not tokens.get("eos_token"):
        raise ResourceError(
            f"{key}: {folder} holds {kind} whose tokenizer has neither a padding token nor an end-of-sequence token "
            "to pad batches with (tokenizer_config.json / special_tokens_map.json name neither `pad_token` nor "
            "`eos_token`). Give the tokenizer one (tokenizer.pad_token = ...; tokenizer.save_pretrained(folder)).")
    for method, parts in (methods or {}).items():
        part = (parts or {}).get("adversarial_embedding")
        if part and _perturb_site(part) == "embedding_output":
            raise ResourceError(
                f"methods.{method}.adversarial_embedding.perturb: 'embedding_output' perturbs the output of an "
                f"encoder's embedding layer (position and type embeddings, LayerNorm); {key}: {folder} holds {kind}, "
                "which has none. Set `perturb: word_embeddings` for this method, or leave it out of `run.methods`.")
    return config


def prepare(tokenizer, model=None):
    """Make ``tokenizer`` (and ``model``) ready for padded batches; both are changed in place and returned.

    See the module docstring. Raises ``ValueError`` for a tokenizer with neither a padding nor an
    end-of-sequence token.
    """
    config = model.config.to_dict() if model is not None else {}
    decoder = is_decoder_only(config) if model is not None else False
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                f"the tokenizer ({type(tokenizer).__name__}) has neither a padding token nor an end-of-sequence "
                "token to pad batches with: give it one (tokenizer.pad_token = ...) and save it with the model")
        tokenizer.pad_token = tokenizer.eos_token
        decoder = decoder or model is None  # an encoder's tokenizer always has a padding token
    if decoder:
        tokenizer.padding_side = "right"
    if model is not None and (decoder or model.config.pad_token_id is None):
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def load_tokenizer(path: str | Path, split_words: bool = False):
    """The fast tokenizer of a model folder, prepared (padding). ``split_words``: for inputs already split into
    words (``is_split_into_words``), which byte-level BPE tokenizers (GPT-2, RoBERTa) take only with a space before
    each word (``add_prefix_space``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
    if split_words and getattr(tokenizer, "add_prefix_space", None) is False:
        tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True, add_prefix_space=True)
    return tokenizer


def load_classifier(path: str | Path, head: str = "sequence", split_words: bool = False, **model_kwargs):
    """(model, tokenizer) of a folder, prepared together: ``head`` ``sequence`` (a sentiment classifier) or
    ``token`` (the LCA tagger); ``model_kwargs`` go to ``from_pretrained`` (``num_labels``, ...)."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    auto = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}[head]
    tokenizer = load_tokenizer(path, split_words=split_words)
    model = auto.from_pretrained(str(path), **model_kwargs)
    prepare(tokenizer, model)
    return model, tokenizer
