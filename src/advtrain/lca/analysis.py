"""The paper's LCA tables from a probe's neuron rankings and the test words' activations.

- Table 5 (association strength): for each tag, the test words that most activate its top neurons (for each of the
  top ``top_neurons`` neurons, the ``words_per_neuron`` distinct words with the highest activation; their union is
  ``total``), and how many of them occur in the test data with that gold tag (``match``).
- Table 6: those words, marked when the word's most frequent tag in the training data is the tag.
- Table 7: accuracy of a probe trained on the ``ablation_neurons`` best-ranked neurons only.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

#: The tags the paper's Tables 5 and 6 list, in its order.
PAPER_TAGS = ("JJ", "JJR", "MD", "VBD", ":", "VBZ", "RB", "VBG")


def top_words(activations: np.ndarray, words: np.ndarray, neuron: int, count: int) -> list[str]:
    """The ``count`` distinct words whose occurrences reach the highest activations of ``neuron``."""
    order = np.argsort(-activations[:, neuron].astype(np.float32), kind="stable")
    out: list[str] = []
    for i in order:
        word = str(words[i])
        if word not in out:
            out.append(word)
            if len(out) == count:
                break
    return out


def most_frequent_tags(words: np.ndarray, tags: np.ndarray, tag_names: list[str]) -> dict[str, str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for word, tag in zip(words, tags, strict=True):
        if tag >= 0:
            counts[str(word)][int(tag)] += 1
    return {w: tag_names[c.most_common(1)[0][0]] for w, c in counts.items()}


def association(rankings: np.ndarray, test: dict, train: dict, tag_names: list[str], top_neurons: int = 5,
                words_per_neuron: int = 5) -> list[dict]:
    """One row per tag: its top neurons, the words they fire most on, match / total / %."""
    gold: dict[str, set[str]] = defaultdict(set)
    for word, tag in zip(test["words"], test["tags"], strict=True):
        if tag >= 0:
            gold[tag_names[int(tag)]].add(str(word))
    usual = most_frequent_tags(train["words"], train["tags"], tag_names)
    rows = []
    for index, tag in enumerate(tag_names):
        neurons = [int(n) for n in rankings[index][:top_neurons]]
        found: list[str] = []
        for neuron in neurons:
            found.extend(w for w in top_words(test["activations"], test["words"], neuron, words_per_neuron)
                         if w not in found)
        matched = [w for w in found if w in gold[tag]]
        rows.append({
            "tag": tag, "neurons": neurons, "words": found, "matched_words": matched,
            "usual_tag_words": [w for w in found if usual.get(w) == tag],
            "match": len(matched), "total": len(found),
            "percent": 100.0 * len(matched) / len(found) if found else float("nan"),
            "test_words_with_tag": len(gold[tag]),
        })
    return rows


def neuron_name(neuron: int, hidden_size: int) -> str:
    return f"L{neuron // hidden_size}:{neuron % hidden_size}"


def analyse(train: dict, test: dict, tag_names: list[str], settings: dict, seed: int) -> dict:
    """Probe all neurons, rank them, and compute Table 5/6 rows and the Table 7 ablation for one model.

    ``settings`` is the config's ``lca`` block (probe: l1, l2, epochs, batch_size, learning_rate, zscore;
    top_neurons, words_per_neuron, ablation_neurons, search_stride).
    """
    from advtrain.lca import probe as probes
    from advtrain.lca.settings import PROBE_DEFAULTS

    probe_settings = {**PROBE_DEFAULTS, **(settings.get("probe") or {})}
    probe_settings.setdefault("seed", seed)
    classes = len(tag_names)
    x_train, y_train = train["activations"], train["tags"]
    x_test, y_test = test["activations"], test["tags"]
    model = probes.train_probe(x_train, y_train, classes, **probe_settings)
    abs_weights = probes.weights(model)
    rankings = probes.class_rankings(abs_weights)
    ordering = probes.neuron_ordering(abs_weights, settings.get("search_stride", 100))
    k = settings.get("ablation_neurons", 10)
    hidden = int(test["hidden_size"])
    rows = association(rankings, test, train, tag_names, settings.get("top_neurons", 5),
                       settings.get("words_per_neuron", 5))
    for row in rows:
        row["neuron_names"] = [neuron_name(n, hidden) for n in row["neurons"]]
    return {
        "tags": tag_names,
        "neurons": int(x_train.shape[1]),
        "layers": int(test["layers"]),
        "hidden_size": hidden,
        "train_words": int((y_train >= 0).sum()),
        "test_words": int((y_test >= 0).sum()),
        "probe_accuracy": probes.accuracy(model, x_test, y_test),
        "ablation_neurons": k,
        "top_ranked_neurons": [neuron_name(int(n), hidden) for n in ordering[:k]],
        "ablation_accuracy": probes.ablation_accuracy(x_train, y_train, x_test, y_test, ordering[:k], classes,
                                                      **probe_settings),
        "association": rows,
    }
