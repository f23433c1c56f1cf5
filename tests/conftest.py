"""Fixtures: a tiny BERT with its own WordPiece tokenizer, synthetic sentiment data, and a tiny workflow config.

Everything is built here, offline, once per session: no test downloads anything.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if (SHARED_DATA / "nltk_data").is_dir():
    os.environ.setdefault("NLTK_DATA", str(SHARED_DATA / "nltk_data"))

POSITIVE = ["good", "great", "excellent", "wonderful", "superb", "enjoyable", "brilliant", "charming"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "poor", "dreadful", "dull", "clumsy"]
FILLER = ["the", "movie", "film", "plot", "was", "acting", "story", "and", "really", "quite", "a", "this",
          "it", "is", "cast", "script", "director", "scene", "ending", "very"]


def synthetic_rows(n: int, seed: int, class_words, length=(4, 12), signal=(1, 2),
                   filler=FILLER) -> list[tuple[str, int]]:
    """Balanced toy texts, class ``i % k`` carried by ``signal`` words of ``class_words[label]`` (a count, or a
    (low, high) range drawn per row) among ``length`` words of ``filler``."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % len(class_words)
        words = rng.choices(filler, k=rng.randint(*length))
        for _ in range(rng.randint(*signal) if isinstance(signal, tuple) else signal):
            words.insert(rng.randrange(len(words) + 1), rng.choice(class_words[label]))
        rows.append((" ".join(words), label))
    rng.shuffle(rows)
    return rows


def synthetic_reviews(n: int, seed: int) -> list[tuple[str, int]]:
    """Balanced toy reviews whose label is carried by one or two sentiment words among fillers."""
    return synthetic_rows(n, seed, (NEGATIVE, POSITIVE))


TINY_BERT_VOCAB = Path(__file__).parent / "support" / "tiny_bert_vocab.txt"


def build_tiny_bert(dest: Path, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 BERT (MLM head included) and a WordPiece tokenizer trained on synthetic text."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    corpus = [text for text, _ in synthetic_reviews(2000, seed=seed)]
    corpus += [" ".join(POSITIVE + NEGATIVE + FILLER)] * 5
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    if seed == 0:
        # The trainer breaks ties between equally frequent merges in hash-map order, which changes from process to
        # process (Rust's random hash seeds): seed 0 is one of its vocabularies, frozen, so every run builds the same
        # model (benchmarks/study_outputs.py compares two runs of the tiny study file by file).
        vocab = TINY_BERT_VOCAB.read_text().splitlines()
        tok.model = models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]")
    else:
        tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    fast.save_pretrained(dest)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(dest)
    return dest


def build_tiny_decoder(dest: Path, seed: int = 0, kind: str = "gpt2") -> Path:
    """A 2-layer, hidden-32 decoder-only LM (``gpt2``: GPT-2 with learned absolute positions; ``llama``: rotary
    positions, RMSNorm) with a byte-level BPE tokenizer trained on synthetic text. As GPT-2's and Llama's own, the
    tokenizer has an end-of-sequence token and no padding token."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast, LlamaConfig, LlamaForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    corpus = [text for text, _ in synthetic_reviews(2000, seed=seed)] + [" ".join(POSITIVE + NEGATIVE + FILLER)] * 5
    eos = "<|endoftext|>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)  # as GPT-2's tokenizer.json
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=[eos],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = GPT2TokenizerFast(tokenizer_object=tok, bos_token=eos, eos_token=eos, unk_token=eos, model_max_length=128)
    fast.save_pretrained(dest)
    torch.manual_seed(seed)
    eos_id = tok.token_to_id(eos)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=128, n_embd=32, n_layer=2,
                                           n_head=2, bos_token_id=eos_id, eos_token_id=eos_id))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=128, bos_token_id=eos_id, eos_token_id=eos_id))
    model.save_pretrained(dest)
    return dest


def build_tiny_marian(dest: Path, seed: int = 0, max_positions: int = 64) -> Path:
    """A 1-layer, d_model-16 MarianMT with random weights and a WordPiece tokenizer (no sentencepiece).

    The tokenizer is wrapped in ``PreTrainedTokenizerFast`` and appends ``</s>`` as Marian's does; the model reads
    at most ``max_positions`` tokens, so long reviews must be chunked to be translated whole.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    corpus = [text for text, _ in synthetic_reviews(500, seed=seed)] + [" ".join(POSITIVE + NEGATIVE + FILLER)] * 5
    tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["<pad>", "</s>", "<unk>"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A $B </s>",
                                                       special_tokens=[("</s>", tok.token_to_id("</s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_input_names=["input_ids", "attention_mask"], model_max_length=max_positions)
    fast.save_pretrained(dest)
    torch.manual_seed(seed)
    pad, eos = tok.token_to_id("<pad>"), tok.token_to_id("</s>")
    config = MarianConfig(vocab_size=tok.get_vocab_size(), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=max_positions, pad_token_id=pad,
                          eos_token_id=eos, decoder_start_token_id=pad)
    model = MarianMTModel(config)
    # As opus-mt's generation config: forced end of sentence at the length limit.
    model.generation_config = GenerationConfig(pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad,
                                               forced_eos_token_id=eos, max_length=max_positions)
    model.save_pretrained(dest)
    return dest


def write_tiny_data(root: Path) -> dict[str, Path]:
    """Three datasets in three local formats: csv (train + test), rt-polarity pos/neg, label-text (ood)."""
    root.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    paths = {}
    rows = synthetic_reviews(360, seed=1)
    pd.DataFrame(rows[:280], columns=["text", "label"]).to_csv(root / "tiny_train.csv", index=False)
    pd.DataFrame(rows[280:], columns=["text", "label"]).to_csv(root / "tiny_test.csv", index=False)
    paths.update(tiny_train=root / "tiny_train.csv", tiny_test=root / "tiny_test.csv")
    mr = synthetic_reviews(300, seed=2)
    # cp1252 bytes: "…" is 0x85, which str.splitlines would wrongly treat as a line break
    for label, name in ((1, "pos"), (0, "neg")):
        lines = [f"{t} \u2026 ." for t, lab in mr if lab == label]
        (root / f"rt-polarity.{name}").write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
        paths[f"mr_{name}"] = root / f"rt-polarity.{name}"
    ood = synthetic_reviews(80, seed=3)
    (root / "yelp.txt").write_text("".join(f"{lab} {t}\n" for t, lab in ood), encoding="utf-8")
    paths["yelp"] = root / "yelp.txt"
    return paths


def tiny_config(model_dir: Path, data: dict[str, Path], cache_dir: Path) -> dict:
    return {
        "cache_dir": str(cache_dir),
        "offline": True,
        "model": {
            "name": "tiny-bert", "path": str(model_dir), "max_length": 32, "batch_size": 8,
            "eval_batch_size": 64, "learning_rate": 3e-3, "epochs": 4, "warmup_ratio": 0.0,
            "weight_decay": 0.0, "precision": "auto", "gradient_accumulation_steps": 1, "dataloader_workers": 0,
        },
        "seeds": [1, 2],
        "datasets": {
            "IMDB": {
                "role": "train",
                "source": {"local": {"format": "csv", "files": {"train": str(data["tiny_train"]),
                                                                 "test": str(data["tiny_test"])}}},
                "carve": {"validation": 0.15},
            },
            "MR": {
                "role": "train",
                "source": {"local": {"format": "rt-polarity", "encoding": "cp1252",
                                     "files": {"pos": str(data["mr_pos"]), "neg": str(data["mr_neg"])}}},
                "carve": {"validation": 40, "test": 40},
            },
            "YELP": {
                "role": "ood",
                "source": {"local": {"format": "label-text", "files": {"test": str(data["yelp"])}}},
            },
        },
        "methods": {"BERT": {}},
        "toy": {
            "theta": 0.5, "noise_sigmas": [0.01, 0.1], "epochs": 200, "switch_epoch": 150, "lr": 0.005,
            "runs": 5, "n_points": 50, "steps": 3, "epsilon": 0.1, "step_size": 1.0, "init_std": 0.01,
            "x_low": -1.0, "x_high": 1.0, "update_mode": "sample", "seed": 0,
        },
        "run": {"methods": None, "datasets": ["IMDB", "MR"]},
    }


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return build_tiny_decoder(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="session")
def tiny_marian(tmp_path_factory) -> dict[str, Path]:
    """Two tiny random MarianMT models standing in for opus-mt-en-de and opus-mt-de-en."""
    root = tmp_path_factory.mktemp("tiny_marian")
    return {"forward": build_tiny_marian(root / "en-de", seed=1), "backward": build_tiny_marian(root / "de-en", seed=2)}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    return write_tiny_data(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture()
def tiny_workdir(tmp_path, tiny_model, tiny_data):
    """A working directory with config/tiny.yaml; returns (workdir, config dict)."""
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    write_config(tmp_path, config)
    return tmp_path, config


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


#: How the tests run a tiny workflow on 2 CPU cores: two jobs at a time. On a CPU the `gpu` resource (one GPU job at a
#: a time, profiles/default) and the model rules' 2 threads only serialise jobs whose cost is mostly Python imports.
# --set-threads and --resources take any number of values, so "--cores 2" goes last: it ends their lists
# and the targets a test appends stay targets.
TWO_JOBS = ("--set-threads", "train=1", "lca_train=1", "lca_activations=1", "--resources", "gpu=2", "--cores", "2")


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1200, **popen):
    """The real workflow, as a user runs it (no conda: its channels are unreachable here)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **popen)
    if check and proc.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "logs").rglob("*.log")))
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}\n{logs}")
    return proc


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (developer data in ../shared/data)")
    return path


def planned_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """[(rule, wildcards)] of the jobs a run lists (each once: the "Job stats" table is not read)."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line)
        if m:
            jobs.append((m.group(1), {}))
        elif jobs and line.startswith("    wildcards: "):
            jobs[-1][1].update(kv.split("=", 1) for kv in line.split(": ", 1)[1].split(", "))
    return jobs


def apt_install(*packages: str, why: str) -> None:
    """Install Debian packages a test needs (CI is a fresh Debian machine where the tests run as root); skip the
    test where that is impossible. Already installed packages cost nothing."""
    missing = [p for p in packages
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0] if shutil.which("dpkg") \
        else list(packages)
    if not missing:
        return
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        pytest.skip(f"{why} needs {', '.join(missing)}: installing them takes root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Test workers run in parallel (pytest-xdist) and apt-get holds dpkg's lock: one install at a time.
    with open(Path(tempfile.gettempdir()) / "advtrain-tests-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, env=env)
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                              capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"apt-get install {' '.join(missing)} failed:\n{proc.stdout}\n{proc.stderr}")
