"""RanMASK's and SAFER's noise, ensemble and certificates, restated from their sources (not from advtrain's code)
for tests/unit/test_smoothing.py.

- RanMASK (``zjiehang/RanMASK``): ``utils/mask.py`` (mask_sentence), ``utils/certify.py`` (lc_bound, delta,
  population_radius_for_majority), ``classifier.py:396-444`` (certify);
- SAFER (``lushleaf/Structure-free-certified-NLP``): ``data_util.py`` (WordSubstitude), ``evaluation.py``
  (calculate_tv, calculate_tv_table, the certificate at line 297); TextDefender's copy ``utils/safer.py``;
- TextDefender (``RockyLzy/TextDefender``): ``textattack/models/wrappers/huggingface_model_ensemble_wrapper.py``.

The global ``np.random`` generator is the references'; statsmodels' ``proportion_confint(method="beta")`` is
restated with scipy (statsmodels is not installed here).
"""

from __future__ import annotations

import math
import string

import numpy as np
from scipy import stats


# ------------------------------------------------------------------------------------------------ RanMASK
def sampling_index_loop_nums(length, mask_numbers, nums, sampling_probs=None):
    mask_indexes = []
    for _ in range(nums):
        mask_indexes.append(np.random.choice(list(range(length)), mask_numbers, replace=False, p=sampling_probs).tolist())
    return mask_indexes


def mask_sentence_by_indexes(sentence, indexes, token, forbidden=None):
    tmp_sentence = sentence.copy()
    for index in indexes:
        tmp_sentence[index] = token
    return " ".join(tmp_sentence)


def mask_sentence(sentence, rate, token, nums=1, min_keep=2):
    sentence_in_list = sentence.split()
    length = len(sentence_in_list)
    mask_numbers = round(length * rate)
    if length - mask_numbers < min_keep:
        mask_numbers = length - min_keep if length - min_keep >= 0 else 0
    mask_indexes = sampling_index_loop_nums(length, mask_numbers, nums)
    return [mask_sentence_by_indexes(sentence_in_list, indexes, token) for indexes in mask_indexes]


def proportion_confint_beta(count, nobs, alpha):
    """statsmodels.stats.proportion.proportion_confint(count, nobs, alpha, method="beta")."""
    alpha_2 = alpha / 2.0
    low = stats.beta.ppf(alpha_2, count, nobs - count + 1) if count > 0 else 0.0
    upp = stats.beta.isf(alpha_2, count + 1, nobs - count) if count < nobs else 1.0
    return low, upp


def lc_bound(k, n, alpha):
    return proportion_confint_beta(k, n, alpha=2 * alpha)


def delta(size, keep, radius):
    return math.factorial(size - radius) * math.factorial(size - keep) / (
        math.factorial(size) * math.factorial(size - keep - radius))


def population_radius_for_majority(bound, size, keep, lambda_value=1.0):
    radius = 0
    lhs = (0.5 + lambda_value - bound) / lambda_value
    while True:
        try:
            rhs = delta(size, keep, radius)
            if lhs >= rhs:
                break
            else:
                radius += 1
        except Exception:  # the reference's bare except: factorial of a negative number
            break
    return radius


def certify_one(guess_counts, certify_ensemble, alpha, data_length, sparse_mask_rate):
    """classifier.py:414-437 for a correct guess, certify_lambda = True (args.py:74)."""
    keep_nums = data_length - round(data_length * sparse_mask_rate)
    lower_bound, _ = lc_bound(guess_counts, certify_ensemble, alpha)
    return population_radius_for_majority(lower_bound, data_length, keep_nums,
                                          lambda_value=guess_counts / certify_ensemble)


# ------------------------------------------------------------------------------------------------ SAFER
class WordSubstitude:
    def __init__(self, table):
        self.table = table
        self.table_key = set(list(table.keys()))
        self.exclude = set(string.punctuation)

    def get_perturbed_batch(self, sentence, rep=1):  # TextDefender utils/safer.py:23-35
        out_batch = []
        sentence_in_list = sentence.split()
        for _ in range(rep):
            tmp_sentence = []
            for i in range(len(sentence_in_list)):
                token = sentence_in_list[i]
                if token[-1] in self.exclude:
                    tmp_sentence.append(self.sample_from_table(token[0:-1]) + token[-1])
                else:
                    tmp_sentence.append(self.sample_from_table(token))
            out_batch.append(" ".join(tmp_sentence))
        return out_batch

    def sample_from_table(self, word):
        if word in self.table_key:
            tem_words = self.table[word]["set"]
            num_words = len(tem_words)
            index = np.random.randint(0, num_words)
            return tem_words[index]
        else:
            return word


def calculate_tv_table(data_neighbor, perturb):
    """evaluation.py:457-481 (the frequency bookkeeping left out)."""
    counterfitted_tv = {}
    for key in data_neighbor.keys():
        if key not in perturb.keys():
            counterfitted_tv[key] = 1
        elif perturb[key]["isdivide"] == 0:
            counterfitted_tv[key] = 1
        else:
            key_neighbor = data_neighbor[key]
            cur_min = 10.0
            num_perb = len(perturb[key]["set"])
            for neighbor in key_neighbor:
                num_inter_perb = len(list(set(perturb[neighbor]["set"]).intersection(set(perturb[key]["set"]))))
                tem_min = num_inter_perb / num_perb
                if tem_min < cur_min:
                    cur_min = tem_min
            counterfitted_tv[key] = cur_min
    return counterfitted_tv


class calculate_tv:  # noqa: N801 - the reference's name
    def __init__(self, table_tv):
        self.table = table_tv
        self.key_dict = set(table_tv.keys())
        self.exclude = set(string.punctuation)

    def get_tv(self, text):
        tem_text = text.split(" ")
        tv_list = np.zeros(len(tem_text))
        if tem_text[0]:
            for j in range(len(tem_text)):
                if tem_text[j][-1] in self.exclude:
                    tem_text[j] = tem_text[j][0:-1]
                if tem_text[j] in self.key_dict:
                    tv_list[j] = self.table[tem_text[j]]
                else:
                    tv_list[j] = 1.0
        return np.sort(tv_list)


def safer_certified(acc, tem_tv, mc_error):
    """evaluation.py:297."""
    return acc - 1.0 + np.prod(tem_tv) >= 0.5 + mc_error


# ------------------------------------------------------------------------------------------------ TextDefender
def ensemble_outputs(outputs, n_texts, ensemble_num, ensemble_method):
    """huggingface_model_ensemble_wrapper.py:88-103 (sklearn's normalize restated: rows over their L2 norm)."""
    label_nums = outputs.shape[1]
    logits_list = []
    for logits in np.split(outputs, indices_or_sections=n_texts, axis=0):
        if ensemble_method == "votes":
            probs = np.bincount(np.argmax(logits, axis=-1), minlength=label_nums) / ensemble_num
            logits_list.append(np.expand_dims(probs, axis=0))
        else:
            norms = np.linalg.norm(logits, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            probs = np.mean(logits / norms, axis=0, keepdims=True)
            logits_list.append(probs)
    return np.concatenate(logits_list, axis=0)
