"""Every fetch rule, run by Snakemake against local stand-ins for the hub, TextAttack's S3 bucket and NLTK's index
(tests/support/mock_remote.py), then the workflow's data jobs on what was fetched and the loaders of the fetched models; and
bad answers: a 404, a 500 then success, a cut connection, a truncated zip, a checksum mismatch."""

from __future__ import annotations

import io
import os
import pickle
import stat
from pathlib import Path

import pandas as pd
import pytest
from attack_fixtures import build_flair_tagger, build_hownet, build_sentence_encoder, build_word_embedding
from conftest import TWO_JOBS, run_snakemake, synthetic_reviews, tiny_config, write_config
from mock_remote import MockRemote, nltk_attack_packages, nltk_index, sha256, treebank_package, zip_folder

from advtrain import downloads
from advtrain.attacks import resources as attack_res

pytestmark = pytest.mark.slow

MODEL = "test-org/tiny-bert"
FLAIR = downloads.DEFAULTS["flair_pos"]
DATASETS = {
    "IMDB": "resources/datasets/IMDB/stanfordnlp--imdb",
    "MR": "resources/datasets/MR/cornell-movie-review-data--rotten_tomatoes",
    "YELP": "resources/datasets/YELP/fancyzhx--yelp_polarity",
}
ATTACK = {
    "word_embedding": "resources/attacks/paragramcf",
    "sentence_encoder": "resources/attacks/sentence-transformers--stsb-distilbert-base",
    "masked_lm": "resources/attacks/masked_lm/google-bert--bert-base-uncased",
    "hownet": "resources/attacks/hownet/word_candidates_sense.pkl",
    "flair_pos": "resources/attacks/flair--upos-english-fast/pytorch_model.bin",
    "nltk_data": "resources/attacks/nltk_data",
    "causal_lm": "resources/attacks/causal_lm/openai-community--gpt2",
}
AUGMENT = ["resources/augment/google-bert--bert-base-uncased", "resources/augment/Helsinki-NLP--opus-mt-en-de",
           "resources/augment/Helsinki-NLP--opus-mt-de-en"]
MODEL_DIR = "resources/models/test-org--tiny-bert"
POS_CORPUS = "resources/lca/nltk_data"


def parquet(rows) -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame(rows, columns=["text", "label"]).to_parquet(buffer, index=False)
    return buffer.getvalue()


def configs_card(splits) -> dict:
    return {"configs": [{"config_name": "plain_text", "data_files": [
        {"split": s, "path": f"plain_text/{s}-*"} for s in splits]}]}


@pytest.fixture(scope="module")
def remote(tmp_path_factory, tiny_model, tiny_marian, tiny_gpt2):
    """The stand-in server with every repository and file the fetch rules ask for."""
    root = tmp_path_factory.mktemp("remote")
    model = {p.name: p.read_bytes() for p in tiny_model.iterdir() if p.is_file()}
    # Both weight formats (and another framework's), as on the hub: only model.safetensors may be fetched.
    model.update({"pytorch_model.bin": b"the pickled copy: never fetched", "tf_model.h5": b"never fetched"})
    flair_file = build_flair_tagger(root / "flair" / "pytorch_model.bin")
    with MockRemote() as server:
        server.add_repo(MODEL, model)
        server.add_repo("google-bert/bert-base-uncased", model)
        server.add_repo("sentence-transformers/stsb-distilbert-base",
                        build_sentence_encoder(root / "sentence_encoder", tiny_model))
        server.add_repo("openai-community/gpt2", tiny_gpt2)
        server.add_repo("Helsinki-NLP/opus-mt-en-de", tiny_marian["forward"])
        server.add_repo("Helsinki-NLP/opus-mt-de-en", tiny_marian["backward"])
        server.add_repo(FLAIR["repo"], {"pytorch_model.bin": flair_file.read_bytes(), "README.md": b"tagger"})
        imdb = {f"plain_text/{s}-00000-of-00001.parquet": parquet(synthetic_reviews(n, seed))
                for s, n, seed in (("train", 120, 21), ("test", 40, 22), ("unsupervised", 40, 23))}
        server.add_repo("stanfordnlp/imdb", imdb, "dataset", configs_card(["train", "test", "unsupervised"]))
        mr = {f"{s}.parquet": parquet(synthetic_reviews(n, seed))
              for s, n, seed in (("train", 160, 31), ("validation", 40, 32), ("test", 40, 33))}
        server.add_repo("cornell-movie-review-data/rotten_tomatoes", {**mr, "README.md": b"MR"}, "dataset",
                        {"license": "unknown"})
        yelp = {f"plain_text/{s}-00000-of-00001.parquet": parquet(synthetic_reviews(n, seed))
                for s, n, seed in (("train", 200, 41), ("test", 60, 42))}
        server.add_repo("fancyzhx/yelp_polarity", yelp, "dataset", configs_card(["train", "test"]))
        server.add_file("/textattack/word_embeddings/paragramcf",
                        zip_folder(build_word_embedding(root / "paragramcf"), "paragramcf"))
        server.add_file("/textattack/transformations/hownet/word_candidates_sense.pkl",
                        build_hownet(root / "hownet.pkl").read_bytes())
        server.index_url = nltk_index(server, {**nltk_attack_packages(), "treebank": treebank_package()})
        server.flair_sha256 = sha256(flair_file.read_bytes())
        yield server


def fetch_config(workdir: Path, remote: MockRemote, tiny_model, tiny_data, flair_sha256: str) -> dict:
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["cache_dir"] = "resources"
    config["offline"] = False
    config["model"].update(name=MODEL, path=None, epochs=1)
    config["seeds"] = [1]
    config["datasets"] = {
        "IMDB": {"role": "train", "carve": {"validation": 0.2},
                 "source": {"hf": {"name": "stanfordnlp/imdb", "config_name": "plain_text",
                                   "splits": {"train": "train", "test": "test"}}}},
        "MR": {"role": "train", "source": {"hf": {"name": "cornell-movie-review-data/rotten_tomatoes",
                                                  "splits": {"train": "train", "validation": "validation",
                                                             "test": "test"}}}},
        "YELP": {"role": "ood", "source": {"hf": {"name": "fancyzhx/yelp_polarity", "splits": {"test": "test"}}}},
    }
    config["methods"] = {"BERT": {}, "SSMBA": {"augment": {"augmenters": ["ssmba"]}},
                         "BackTranslation": {"augment": {"augmenters": ["backtranslation"]}}}
    config["augmentation"] = {"augmenters": {
        "ssmba": {"kind": "ssmba", "model": {"name": "google-bert/bert-base-uncased"}},
        "backtranslation": {"kind": "backtranslation", "forward": {"name": "Helsinki-NLP/opus-mt-en-de"},
                            "backward": {"name": "Helsinki-NLP/opus-mt-de-en"}}}}
    config["run"] = {"methods": ["BERT", "SSMBA", "BackTranslation"], "datasets": ["MR"]}
    config["attacks"] = {"recipes": ["textfooler", "bae", "pso"], "num_examples": 4}
    config["lca"] = {"methods": ["BERT"], "data": {"source": "treebank", "test_fraction": 0.25}}
    config["downloads"] = {
        "retries": 3,
        "nltk_index": remote.index_url,
        "word_embedding": {"url": remote.url + "/textattack/word_embeddings/paragramcf", "sha256": None},
        "hownet": {"url": remote.url + "/textattack/transformations/hownet/word_candidates_sense.pkl", "sha256": None},
        "flair_pos": {**FLAIR, "sha256": flair_sha256},
    }
    return config


def online(remote: MockRemote, workdir: Path) -> dict:
    """The environment of a run that may download: the hub is the stand-in, nothing goes through a proxy, and the
    subprocess gets umask 002 (group-writable by default, as on many cluster accounts)."""
    drop = {"HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
            "http_proxy", "https_proxy", "all_proxy"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HF_ENDPOINT=remote.url, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(workdir / "hf_home"))
    return {"env": env, "umask": 0o002}


def staged_leftovers(workdir: Path) -> list[str]:
    return sorted(str(p.relative_to(workdir)) for p in (workdir / "resources").rglob("*") if ".part-" in p.name)


def shareable(path: Path) -> bool:
    """No group or world write bit on what was fetched (NLTK refuses such folders). Snakemake's own flag file in a
    directory output is made with the umask, and NLTK never reads it."""
    return not any(p.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH) for p in [path, *path.rglob("*")]
                   if p.name != ".snakemake_timestamp")


def test_every_fetch_rule_then_a_run_on_what_was_fetched(tmp_path, remote, tiny_model, tiny_data):
    write_config(tmp_path, fetch_config(tmp_path, remote, tiny_model, tiny_data, remote.flair_sha256))
    targets = [MODEL_DIR, *DATASETS.values(), *ATTACK.values(), *AUGMENT, POS_CORPUS]
    run_snakemake(tmp_path, *TWO_JOBS, *targets, **online(remote, tmp_path))
    for target in targets:
        assert (tmp_path / target).exists(), target
        assert shareable(tmp_path / target), target
    assert staged_leftovers(tmp_path) == []

    # One weight format, nothing of other frameworks.
    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / MODEL_DIR).iterdir()}
    assert [p for p in remote.requested("pytorch_model.bin") if FLAIR["repo"] not in p] == []
    assert remote.requested("tf_model.h5") == []
    # Only the configured splits' files: not YELP's training split (256 MB on the hub), not IMDB's unsupervised one.
    assert [p for p in remote.requested(".parquet") if "yelp" in p and "train" in p] == []
    assert remote.requested("unsupervised-00000-of-00001.parquet") == []
    from datasets import load_from_disk

    assert {name: sorted(load_from_disk(str(tmp_path / path))) for name, path in DATASETS.items()} == {
        "IMDB": ["test", "train"], "MR": ["test", "train", "validation"], "YELP": ["test"]}
    # Unpinned single files record what arrived; the flair tagger matched its pinned sha256.
    hownet = tmp_path / ATTACK["hownet"]
    assert Path(f"{hownet}.sha256").read_text().split()[0] == sha256(hownet.read_bytes())
    assert (tmp_path / ATTACK["word_embedding"] / "paragramcf.zip.sha256").is_file()
    assert sha256((tmp_path / ATTACK["flair_pos"]).read_bytes()) == remote.flair_sha256
    assert remote.requested(f"/{FLAIR['repo']}/resolve/{FLAIR['revision']}/pytorch_model.bin")

    # What was fetched is what the loaders accept.
    import nltk

    saved = list(nltk.data.path)
    try:
        assert attack_res.configure_nltk(tmp_path / ATTACK["nltk_data"])
    finally:
        nltk.data.path[:] = saved
    attack_res.check_hownet_bank(pickle.loads(hownet.read_bytes()), hownet)
    assert attack_res.sentence_encoder_path(tmp_path / ATTACK["sentence_encoder"])
    model, _ = attack_res.load_masked_lm(tmp_path / ATTACK["masked_lm"])
    assert model.config.hidden_size == 32
    lm, _ = attack_res.load_causal_lm(tmp_path / ATTACK["causal_lm"])
    assert lm.config.model_type == "gpt2" and lm.config.n_embd == 32
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    for folder in (MODEL_DIR, AUGMENT[0]):  # what the train and augment jobs load
        assert AutoModelForSequenceClassification.from_pretrained(tmp_path / folder, num_labels=2).num_labels == 2
        assert AutoTokenizer.from_pretrained(tmp_path / folder)("a good movie")["input_ids"]

    # The workflow's own jobs on the fetched datasets and POS corpus; nothing is fetched again.
    before = len(remote.log)
    prepared = ["results/data/IMDB/validation.parquet", "results/data/MR/test.parquet", "results/data/YELP/test.parquet"]
    run_snakemake(tmp_path, *TWO_JOBS, *prepared, "results/lca/data/train.jsonl", **online(remote, tmp_path))
    assert len(remote.log) == before
    assert [len(pd.read_parquet(tmp_path / f)) for f in prepared] == [24, 40, 60]  # IMDB's carved 20 % of 120
    assert (tmp_path / "results/lca/data/train.jsonl").read_text().count("\n") == 30  # 40 trees, 25 % held out


def test_bad_answers_name_the_key_and_leave_nothing(tmp_path, remote, tiny_model, tiny_data):
    """A 404, a truncated zip and a checksum mismatch fail with the resource's key; a 500, a cut connection and a
    hub 500 are retried. A second run fetches exactly what failed: nothing half-written stood in its way."""
    config = fetch_config(tmp_path, remote, tiny_model, tiny_data, FLAIR["sha256"])  # the real tagger's sha256
    write_config(tmp_path, config)
    remote.reset()
    remote.fail(f"/api/models/{MODEL}", 500)
    remote.fail("/textattack/transformations/hownet/word_candidates_sense.pkl", 404)
    remote.fail("/textattack/word_embeddings/paragramcf", "truncate")
    remote.fail("/nltk/packages/corpora/stopwords.zip", "cut")
    yelp_test = "/datasets/fancyzhx/yelp_polarity/resolve/{}/plain_text/test-00000-of-00001.parquet".format(
        remote.commit("fancyzhx/yelp_polarity", None))
    remote.fail(yelp_test, 500)
    targets = [MODEL_DIR, DATASETS["YELP"], ATTACK["hownet"], ATTACK["word_embedding"], ATTACK["flair_pos"],
               ATTACK["nltk_data"]]
    proc = run_snakemake(tmp_path, "--cores", "2", "--keep-going", *targets, check=False, **online(remote, tmp_path))
    assert proc.returncode != 0

    def log(name):
        return (tmp_path / "logs" / "resources" / name).read_text()

    assert "attacks.resources.hownet: could not download" in log("attack_hownet.log")
    assert "404" in log("attack_hownet.log") and "set `attacks.resources.hownet` to the local copy" in log(
        "attack_hownet.log")
    assert "attacks.resources.word_embedding: could not download" in log("attack_word_embedding.log")
    assert "not a complete zip archive" in log("attack_word_embedding.log")
    flair_log = log("attack_flair_pos.log")
    assert "attacks.resources.flair_pos: could not download" in flair_log
    assert f"its sha256 is {remote.flair_sha256}, not {FLAIR['sha256']}" in flair_log
    assert "`downloads.flair_pos.sha256`" in flair_log
    for failed in ("hownet", "word_embedding", "flair_pos"):
        assert not (tmp_path / ATTACK[failed]).exists(), failed
    assert staged_leftovers(tmp_path) == []
    # Retried and fetched.
    assert (tmp_path / MODEL_DIR / "model.safetensors").is_file()
    assert remote.requests(f"/api/models/{MODEL}") == 2
    assert (tmp_path / ATTACK["nltk_data"] / "corpora" / "stopwords.zip").is_file()
    assert remote.requests("/nltk/packages/corpora/stopwords.zip") == 2
    assert (tmp_path / DATASETS["YELP"]).is_dir() and remote.requests(yelp_test) >= 3  # 500, then HEAD and GET

    # The source fixed: the next run fetches what failed, and only that.
    config["downloads"]["flair_pos"]["sha256"] = remote.flair_sha256
    write_config(tmp_path, config)
    run_snakemake(tmp_path, *TWO_JOBS, *targets, **online(remote, tmp_path))
    for target in targets:
        assert (tmp_path / target).exists(), target
    assert remote.requests(f"/api/models/{MODEL}") == 2
    assert remote.requests("/nltk/packages/corpora/stopwords.zip") == 2
