"""OpenAttack's fluency metric, restated from its code (thunlp/OpenAttack, HEAD 4df712e), not from advtrain's, for
tests/unit/test_fluency.py.

``OpenAttack/metric/algorithms/gptlm.py:21-28`` (``GPT2LM``): the tokenizer and LM are the hub's ``gpt2``; here they
are passed in (a tiny GPT-2 from a config), the only change. ``OpenAttack/attack_eval/attack_eval.py:81-87, 231-252``
(``AttackEval``): a metric's ``after_attack`` value is kept when it is not None (successful examples only) and
summed; the summary's "Avg. <name>" is the sum over the count.
"""

from __future__ import annotations

import math


def gpt2lm_after_attack(tokenizer, lm, adversarial_sample):
    """GPT2LM.after_attack (gptlm.py:24-28): exp of the LM's loss with the input ids as labels, one text at a time."""
    if adversarial_sample is not None:
        ipt = tokenizer(adversarial_sample, return_tensors="pt", verbose=False)
        return math.exp(lm(**ipt, labels=ipt.input_ids)[0])
    return None


def attack_eval_average(values):
    """AttackEval.eval's "Avg. Fluency (ppl)" (attack_eval.py:231-252): the mean of the values that are not None."""
    total, count = 0, 0
    for val in values:
        if val is None:
            continue
        count += 1
        total += float(val)
    return total / count
