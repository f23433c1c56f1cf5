"""A2T's word-ranking gradient taken for several texts at once (advtrain.attacks.gradients), each text drawing its
dropout from its own generator: the same gradient and the same end state of the generator as the text alone."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

TEXTS = ["a gripping , funny film", "dull", "the plot drags but the cast is wonderful and the ending lands well",
         "not worth it"]


@pytest.fixture(scope="module")
def dropout_wrapper(tiny_model):
    """The tiny BERT with every dropout (attention's and the classifier's included) at 0.1."""
    import transformers as tr

    from advtrain.attacks.victim import padded_wrapper

    torch.manual_seed(0)
    model = tr.AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, classifier_dropout=0.1)
    tokenizer = tr.AutoTokenizer.from_pretrained(tiny_model)
    return padded_wrapper(model.eval(), tokenizer, 64)


def _generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_the_twin_is_batchable_and_shares_the_weights(dropout_wrapper):
    twin = dropout_wrapper.gradient_twin()
    assert twin.batchable and twin.model.training and not dropout_wrapper.model.training
    assert twin.model.config._attn_implementation == "eager"
    ours = dict(dropout_wrapper.model.named_parameters())
    assert all(p is ours[name] for name, p in twin.model.named_parameters())
    assert not any(type(m) is torch.nn.Dropout for m in twin.model.modules())


def test_batched_gradients_are_each_texts_alone(dropout_wrapper):
    """Masks drawn per text over its own positions: each text's gradient and its generator's end state are those of
    the text taken alone from the same state (the arithmetic to the last bits of batched kernels)."""
    seeds = [11, 12, 13, 14]
    batch_generators = _generators(seeds)
    batched = dropout_wrapper.get_grads(TEXTS, batch_generators)
    for text, seed, result, generator in zip(TEXTS, seeds, batched, batch_generators, strict=True):
        (alone_generator,) = _generators([seed])
        (alone,) = dropout_wrapper.get_grads([text], [alone_generator])
        assert torch.equal(result["ids"], alone["ids"]) and result["gradient"].shape == alone["gradient"].shape
        np.testing.assert_allclose(result["gradient"], alone["gradient"], rtol=1e-4, atol=1e-7, err_msg=text)
        assert torch.equal(generator.get_state(), alone_generator.get_state())
    # the draws do matter: another seed, another gradient
    (other,) = dropout_wrapper.get_grads([TEXTS[2]], _generators([99]))
    assert not np.allclose(other["gradient"], batched[2]["gradient"], rtol=1e-4, atol=1e-7)


def test_a_forked_generator_draws_the_global_stream(dropout_wrapper):
    """get_grad draws from torch's global generator; a generator forked from it draws the same, and joined back
    leaves the global stream where get_grad leaves it."""
    twin = dropout_wrapper.gradient_twin()
    torch.manual_seed(5)
    expected = dropout_wrapper.get_grad(TEXTS[0])["gradient"]
    after = torch.get_rng_state()
    torch.manual_seed(5)
    generator = twin.fork()
    (result,) = dropout_wrapper.get_grads([TEXTS[0]], [generator])
    twin.join(generator)
    assert np.array_equal(result["gradient"], expected)
    assert torch.equal(torch.get_rng_state(), after)


def test_a_dropout_outside_the_modules_is_not_batched(tiny_model):
    """A dropout the twin cannot route (here a functional one on the logits, drawing from the global generator) is
    found by the probe: gradients are then taken one text at a time, from the worker's global stream."""
    import transformers as tr

    from advtrain.attacks.gradients import GradientTwin, NotBatchable

    class FunctionalDropout(tr.BertForSequenceClassification):
        def forward(self, **inputs):
            out = super().forward(**inputs)
            out.logits = torch.nn.functional.dropout(out.logits, 0.1, self.training)
            return out

    model = FunctionalDropout.from_pretrained(tiny_model, num_labels=2).eval()
    tokenizer = tr.AutoTokenizer.from_pretrained(tiny_model)
    state = torch.get_rng_state()
    twin = GradientTwin(model, tokenizer)
    assert not twin.batchable
    assert torch.equal(torch.get_rng_state(), state), "the probe leaves the global stream as it found it"
    with pytest.raises(NotBatchable):
        twin.gradients(TEXTS[:2])
    assert twin.gradients(TEXTS[:1])[0]["gradient"].shape[0] == twin.lengths(TEXTS[:1])[0]


def test_workers_hand_the_baton_on_and_keep_their_streams(dropout_wrapper):
    """Three workers of the query broker ask for gradients at once: each gets its text's gradient as drawn alone
    from its own seed, and its global stream continues from where that draw leaves it."""
    from advtrain.attacks.broker import QueryBroker
    from advtrain.attacks.concurrent import _GradientBatcher

    seeds = [21, 22, 23]
    expected = {}
    for seed, text in zip(seeds, TEXTS, strict=False):
        torch.manual_seed(seed)
        gradient = dropout_wrapper.get_grad(text)["gradient"]
        expected[seed] = (gradient, torch.rand(3))  # the stream after the gradient
    got = {}
    start = threading.Barrier(len(seeds))
    with QueryBroker(256) as broker:
        batcher = _GradientBatcher(broker, 256)
        broker.expect(len(seeds))

        def worker(seed, text):
            start.wait()
            broker.acquire()
            try:
                torch.manual_seed(seed)
                gradient = batcher.gradient(dropout_wrapper, text)["gradient"]
                got[seed] = (gradient, torch.rand(3))
            finally:
                broker.release()
                broker.worker_done()

        threads = [threading.Thread(target=worker, args=(s, t)) for s, t in zip(seeds, TEXTS, strict=False)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        batcher.close()
    assert sum(batcher.batch_sizes) == len(seeds)
    for seed in seeds:
        np.testing.assert_allclose(got[seed][0], expected[seed][0], rtol=1e-4, atol=1e-7)
        assert torch.equal(got[seed][1], expected[seed][1])


def test_a_failing_batch_is_retried_text_by_text(dropout_wrapper, monkeypatch):
    """A batch that raises is split: each text is drawn again from its own start, and only the text that fails gets
    the error."""
    from advtrain.attacks.broker import QueryBroker
    from advtrain.attacks.concurrent import _GradientBatcher, _GradientRequest

    wrapper = copy.copy(dropout_wrapper)
    real = type(dropout_wrapper).get_grads

    def flaky(self, texts, generators):
        if "dull" in texts:
            raise ValueError("a text the model cannot take")
        return real(self, texts, generators)

    monkeypatch.setattr(type(wrapper), "get_grads", flaky)
    with QueryBroker(256) as broker:
        batcher = _GradientBatcher(broker, 256)
        requests = [_GradientRequest(text, g) for text, g in zip(TEXTS[:3], _generators([1, 2, 3]), strict=True)]
        batcher._serve(wrapper, requests)
        batcher.close()
    assert isinstance(requests[1].error, ValueError) and requests[1].result is None
    for request, seed in ((requests[0], 1), (requests[2], 3)):
        assert request.error is None and request.done.is_set()
        (alone,) = real(dropout_wrapper, [request.text], _generators([seed]))
        np.testing.assert_allclose(request.result["gradient"], alone["gradient"], rtol=1e-4, atol=1e-7)
