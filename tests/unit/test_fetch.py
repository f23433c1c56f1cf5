"""Downloads against a local stand-in server (tests/support/mock_remote.py): retries, checksums, bad answers, NLTK folders
that NLTK accepts, the one weight format and the configured splits picked from a hub listing, namespaced hub ids,
and an ``import textattack`` that downloads nothing. The fetch rules themselves run in test_fetch_workflow.py."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from mock_remote import MockRemote, nltk_attack_packages, nltk_index, sha256, zip_bytes, zip_folder

from advtrain import downloads
from advtrain import sources as res
from advtrain.attacks import resources as attack_res
from advtrain.errors import ResourceError

KEY = "attacks.resources.hownet"


@pytest.fixture()
def remote():
    with MockRemote() as server:
        yield server


def leftovers(folder: Path) -> list[str]:
    """Hidden staging siblings a fetch left behind."""
    return sorted(p.name for p in folder.iterdir() if ".part-" in p.name) if folder.exists() else []


def fetch_file(url: str, dest: Path, **kw) -> str:
    kw.setdefault("retries", 3)
    return downloads.download_file(url, dest, key=KEY, what="the candidate bank", hint="Set it locally.", **kw)


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------------------------------- one file
def test_500_then_success_is_retried(remote, tmp_path):
    url = remote.add_file("/s3/bank.pkl", b"x" * 1000)
    remote.fail("/s3/bank.pkl", 500)
    digest = fetch_file(url, tmp_path / "bank.pkl", sha256=sha256(b"x" * 1000), checksum_key="downloads.hownet.sha256")
    assert (tmp_path / "bank.pkl").read_bytes() == b"x" * 1000
    assert digest == sha256(b"x" * 1000)
    assert remote.requests("/s3/bank.pkl") == 2
    assert not (tmp_path / "bank.pkl.sha256").exists()  # a recorded checksum needs no record
    assert leftovers(tmp_path) == []


def test_connection_cut_short_is_retried(remote, tmp_path):
    url = remote.add_file("/s3/bank.pkl", os.urandom(50_000))
    remote.fail("/s3/bank.pkl", "cut")
    fetch_file(url, tmp_path / "bank.pkl")
    assert (tmp_path / "bank.pkl").read_bytes() == remote.files["/s3/bank.pkl"]
    assert remote.requests("/s3/bank.pkl") == 2


def test_404_names_the_key_and_leaves_nothing(remote, tmp_path):
    with pytest.raises(ResourceError) as err:
        fetch_file(remote.url + "/s3/missing.pkl", tmp_path / "bank.pkl")
    message = str(err.value)
    assert message.startswith(f"{KEY}: could not download the candidate bank from {remote.url}/s3/missing.pkl")
    assert "404" in message and message.endswith("Set it locally.")
    assert remote.requests("/s3/missing.pkl") == 1  # a 404 is not retried
    assert list(tmp_path.iterdir()) == []


def test_retries_give_up_with_the_key(remote, tmp_path):
    url = remote.add_file("/s3/bank.pkl", b"data")
    remote.fail("/s3/bank.pkl", 503, 503)
    with pytest.raises(ResourceError, match=rf"^{KEY}: .*503"):
        fetch_file(url, tmp_path / "bank.pkl", retries=2)
    assert remote.requests("/s3/bank.pkl") == 2
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_names_the_setting_and_keeps_nothing(remote, tmp_path):
    url = remote.add_file("/s3/bank.pkl", b"changed upstream")
    wrong = "0" * 64
    with pytest.raises(ResourceError) as err:
        fetch_file(url, tmp_path / "bank.pkl", sha256=wrong, checksum_key="downloads.hownet.sha256")
    message = str(err.value)
    assert message.startswith(f"{KEY}: ")
    assert f"its sha256 is {sha256(b'changed upstream')}, not {wrong}" in message
    assert "`downloads.hownet.sha256`" in message and "nothing was kept" in message
    assert remote.requests("/s3/bank.pkl") == 1  # a wrong file is not fetched again
    assert list(tmp_path.iterdir()) == []


def test_unpinned_file_records_its_sha256(remote, tmp_path, capsys):
    url = remote.add_file("/s3/bank.pkl", b"bank")
    fetch_file(url, tmp_path / "bank.pkl", checksum_key="downloads.hownet.sha256")
    assert (tmp_path / "bank.pkl.sha256").read_text() == f"{sha256(b'bank')}  bank.pkl\n"
    assert f"Pin it with `downloads.hownet.sha256: {sha256(b'bank')}`" in capsys.readouterr().out


def test_files_are_shareable_whatever_the_umask(remote, tmp_path):
    url = remote.add_file("/s3/bank.pkl", b"bank")
    with umask(0o002):
        fetch_file(url, tmp_path / "bank.pkl")
    assert stat.S_IMODE((tmp_path / "bank.pkl").stat().st_mode) == 0o644


# ---------------------------------------------------------------------------------------------------- attack files
def sources_at(remote: MockRemote, **overrides) -> dict:
    config = {"downloads": {"retries": 2, "nltk_index": remote.url + "/nltk/index.xml",
                            **{kind: {"url": f"{remote.url}/{kind}", "sha256": None}
                               for kind in ("word_embedding", "hownet", "word_neighbours")}}}
    for kind, value in overrides.items():
        config["downloads"][kind] = {**config["downloads"][kind], **value}
    return downloads.settings(config)


def test_word_embedding_zip_is_unpacked(remote, tmp_path):
    from attack_fixtures import build_word_embedding

    data = zip_folder(build_word_embedding(tmp_path / "src" / "paragramcf"), "paragramcf")
    remote.add_file("/word_embedding", data)
    dest = attack_res.fetch("word_embedding", tmp_path / "cache" / "paragramcf", sources_at(remote))
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [*attack_res.WORD_EMBEDDING_FILES.values(), "paragramcf.zip.sha256"])
    assert (dest / "paragramcf.zip.sha256").read_text() == f"{sha256(data)}  paragramcf.zip\n"
    assert leftovers(tmp_path / "cache") == []


def test_truncated_zip_names_the_key_and_leaves_nothing(remote, tmp_path):
    remote.add_file("/word_embedding", zip_bytes({"paragramcf/paragram.npy": os.urandom(20_000)}))
    remote.fail("/word_embedding", "truncate")
    with pytest.raises(ResourceError, match=r"^attacks\.resources\.word_embedding: .*not a complete zip archive.*"
                                            r"set `attacks\.resources\.word_embedding` to the local copy"):
        attack_res.fetch("word_embedding", tmp_path / "cache" / "paragramcf", sources_at(remote))
    assert list((tmp_path / "cache").iterdir()) == []


def test_neighbour_table_is_checked_against_its_pinned_sha256(remote, tmp_path):
    table = b'{"good": ["great", "fine"]}'
    remote.add_file("/word_neighbours", table)
    dest = tmp_path / "counterfitted_neighbors.json"
    with pytest.raises(ResourceError, match=r"^attacks\.resources\.word_neighbours: .*not "
                                            + downloads.DEFAULTS["word_neighbours"]["sha256"]):
        attack_res.fetch("word_neighbours", dest,
                         sources_at(remote, word_neighbours={"sha256": downloads.DEFAULTS["word_neighbours"]["sha256"]}))
    assert not dest.exists()
    attack_res.fetch("word_neighbours", dest, sources_at(remote, word_neighbours={"sha256": sha256(table)}))
    assert attack_res.load_word_neighbours(dest)["good"] == ["great", "fine"]


def test_hownet_pickle(remote, tmp_path):
    bank = {"good": {"adj": ["fine", "nice"]}}
    remote.add_file("/hownet", pickle.dumps(bank))
    dest = attack_res.fetch("hownet", tmp_path / "hownet" / "word_candidates_sense.pkl", sources_at(remote))
    attack_res.check_hownet_bank(pickle.loads(attack_res.hownet_file(dest).read_bytes()), dest)


# ---------------------------------------------------------------------------------------------------- NLTK
@contextmanager
def nltk_search_path():
    """Restore NLTK's search path afterwards: the tiny packages must not shadow real ones in later tests."""
    import nltk

    saved = list(nltk.data.path)
    try:
        yield
    finally:
        nltk.data.path[:] = saved


def test_nltk_data_under_a_group_umask_is_readable_by_nltk(remote, tmp_path):
    """nltk 3.10 refuses folders and files its group can write to: a fetch under umask 002 must not make them."""
    index = nltk_index(remote, nltk_attack_packages())
    dest = tmp_path / "attacks" / "nltk_data"
    with umask(0o002):
        attack_res.fetch("nltk_data", dest, {**sources_at(remote), "nltk_index": index})
    modes = {p.relative_to(dest).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [dest, *dest.rglob("*")]}
    assert modes == {".": 0o755, "corpora": 0o755, "taggers": 0o755, "corpora/stopwords.zip": 0o644,
                     "taggers/averaged_perceptron_tagger_eng.zip": 0o644, "taggers/universal_tagset.zip": 0o644,
                     "corpora/wordnet.zip": 0o644}  # PWWS's WordNet, fetched with the others
    with nltk_search_path():
        assert attack_res.configure_nltk(dest) == dest.resolve()


def test_nltk_package_with_a_wrong_checksum(remote, tmp_path):
    index = nltk_index(remote, nltk_attack_packages())
    remote.files["/nltk/packages/corpora/stopwords.zip"] = zip_bytes({"stopwords/english": b"tampered\n"})
    with pytest.raises(ResourceError, match=r"^attacks\.resources\.nltk_data: could not download NLTK package "
                                            r"stopwords .*md5 .*the checksum NLTK's index records"):
        attack_res.fetch("nltk_data", tmp_path / "nltk_data", {**sources_at(remote), "nltk_index": index})
    assert list(tmp_path.iterdir()) == []


def test_nltk_package_not_in_the_index(remote, tmp_path):
    index = nltk_index(remote, {"stopwords": nltk_attack_packages()["stopwords"]})
    with pytest.raises(ResourceError, match=r"^lca\.data\.nltk_data: could not download NLTK package 'treebank' .*"
                                            r"the index does not list it"):
        downloads.fetch_nltk_packages(["treebank"], tmp_path / "nltk_data", index_url=index, key="lca.data.nltk_data")


def test_group_writable_nltk_folder_is_named(tmp_path):
    folder = tmp_path / "nltk_data"
    (folder / "corpora").mkdir(parents=True)
    (folder / "corpora" / "stopwords.zip").write_bytes(nltk_attack_packages()["stopwords"][1])
    folder.chmod(0o775)
    with nltk_search_path(), pytest.raises(ResourceError, match=r"^attacks\.resources\.nltk_data: .*nltk_data is "
                                                                 r"writable by its group or other users.*chmod -R go-w"):
        attack_res.configure_nltk(folder)


# ---------------------------------------------------------------------------------------------------- hub listings
def test_one_weight_format_per_folder():
    names = ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack",
             "onnx/model.onnx", "tokenizer.json", "vocab.txt", "2_Dense/pytorch_model.bin", "2_Dense/config.json",
             "3_Dense/model.safetensors", "3_Dense/pytorch_model.bin", "model.safetensors.index.json"]
    assert res.model_files(names) == ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt",
                                      "2_Dense/pytorch_model.bin", "2_Dense/config.json", "3_Dense/model.safetensors",
                                      "model.safetensors.index.json"]
    assert res.model_files(["config.json", "pytorch_model.bin", "training.log"]) == [
        "config.json", "pytorch_model.bin", "training.log"]


def configs_card(config_name: str, splits: list[str]) -> dict:
    return {"configs": [{"config_name": config_name, "data_files": [
        {"split": s, "path": f"{config_name}/{s}-*"} for s in splits]}]}


def test_only_the_configured_splits_files():
    yelp = [".gitattributes", "README.md", "plain_text/test-00000-of-00001.parquet",
            "plain_text/train-00000-of-00001.parquet"]
    assert res.dataset_files(yelp, configs_card("plain_text", ["train", "test"]), None, ["test"]) == (
        "parquet", {"test": ["plain_text/test-00000-of-00001.parquet"]})
    imdb = [f"plain_text/{s}-00000-of-00001.parquet" for s in ("train", "test", "unsupervised")]
    card = configs_card("plain_text", ["train", "test", "unsupervised"])
    assert res.dataset_files(imdb, card, "plain_text", ["train", "test"])[1] == {
        "train": [imdb[0]], "test": [imdb[1]]}
    mr = ["README.md", "test.parquet", "train.parquet", "validation.parquet"]  # no configs: datasets' default names
    assert res.dataset_files(mr, {"license": "unknown"}, None, ["train", "validation", "test"])[1] == {
        "train": ["train.parquet"], "validation": ["validation.parquet"], "test": ["test.parquet"]}
    with pytest.raises(ValueError, match=r"has no split dev \(it has train, validation, test\)"):
        res.dataset_files(mr, None, None, ["dev"])
    with pytest.raises(ValueError, match=r"has configs plain_text; set `config_name`"):
        res.dataset_files(imdb, card, "default", ["train"])


# ---------------------------------------------------------------------------------------------------- hub ids
def repo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_configs_use_namespaced_hub_ids():
    for path in (REPO / "config.yaml", REPO / "config" / "quick.yaml"):
        config = yaml.safe_load(path.read_text())
        names = [config["model"]["name"], *(d["source"]["hf"]["name"] for d in config["datasets"].values())]
        names += [m["name"] for a in (config.get("augmentation") or {}).get("augmenters", {}).values()
                  for role, m in a.items() if role in ("model", "forward", "backward")]
        assert all("/" in n for n in names), (path, names)
    assert attack_res.SOURCES["masked_lm"] == "google-bert/bert-base-uncased"


def test_a_legacy_name_is_the_same_repository():
    """A config that still says bert-base-uncased / imdb gets the namespaced repository and its one cache folder."""
    from advtrain import augment

    config = repo_config()
    assert res.model_location(config) == ("resources/models/google-bert--bert-base-uncased", False)
    legacy = repo_config()
    legacy["model"]["name"] = "bert-base-uncased"
    legacy["datasets"]["IMDB"]["source"]["hf"]["name"] = "imdb"
    assert res.model_location(legacy) == res.model_location(config)
    assert res.dataset_location(legacy, "IMDB") == ("resources/datasets/IMDB/stanfordnlp--imdb", False)
    # The SSMBA masked LM is the pretrained model's folder, whichever spelling either side uses.
    assert augment.model_location(legacy, "ssmba", "model") == res.model_location(config)
    assert res.hub_id("Helsinki-NLP/opus-mt-en-de") == "Helsinki-NLP/opus-mt-en-de"


# ---------------------------------------------------------------------------------------------------- settings
def test_download_defaults_agree_with_schema_and_config():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["downloads"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == downloads.DEFAULTS
    assert repo_config()["downloads"] == downloads.DEFAULTS
    assert downloads.settings({"downloads": {"hownet": {"sha256": "a" * 64}}})["hownet"] == {
        "url": downloads.DEFAULTS["hownet"]["url"], "sha256": "a" * 64}


# ---------------------------------------------------------------------------------------------------- textattack
@pytest.mark.slow  # a fresh interpreter imports torch, transformers and TextAttack
def test_importing_textattack_writes_nothing_into_home(tmp_path):
    """TextAttack's first import downloads NLTK packages (and stanza) into the home folder unless its cache holds
    the post-install marker: import_textattack provides one, outside the home folder."""
    nltk_data = tmp_path / "nltk_data"
    for name, (subdir, data) in nltk_attack_packages().items():
        (nltk_data / subdir).mkdir(parents=True, exist_ok=True)
        (nltk_data / subdir / f"{name}.zip").write_bytes(data)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("TA_CACHE_DIR", "NLTK_DATA", "XDG_CACHE_HOME", "HF_HOME", "MPLCONFIGDIR")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO / "src"))
    code = ("import os, sys; from advtrain.attacks.resources import import_textattack; import_textattack(sys.argv[1]);"
            " print(os.environ['TA_CACHE_DIR'])")
    proc = subprocess.run([sys.executable, "-c", code, str(nltk_data)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []
    assert "Downloading NLTK" not in proc.stderr
    assert not Path(proc.stdout.strip()).exists()  # the private temporary cache is removed at exit
