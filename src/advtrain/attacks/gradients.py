"""A2T's word-ranking gradient (TextAttack's ``get_grad``) for a batch of texts, each with its own dropout draws.

TextAttack 0.3.11 takes the gradient in train mode, so dropout is on and each gradient is a random draw. Under the
query broker (:mod:`advtrain.attacks.concurrent`) every example draws from its own random stream, whatever the
interleaving; a batched forward in train mode would draw one mask for the whole batch from whichever stream is
current, so the gradients were taken one at a time, the worker holding the baton (issue 26: A2T's attacks then ran
at 1.8x their forwards' floor).

Here the train-mode twin of the victim (:func:`gradient_twin`) replaces every ``nn.Dropout`` with
:class:`ExampleDropout` modules, which draw each example's mask from that example's own ``torch.Generator``, over
the example's own positions only (hidden states ``[B, L, H]``: the first ``L_b`` rows; attention probabilities
``[B, heads, L, L]``: the ``L_b x L_b`` block; pooled ``[B, H]``: the row), with TextAttack's arithmetic
(``bernoulli_(1 - p)``, divided by ``1 - p``, times the input: ATen's CPU dropout). Each example's masks are
therefore exactly those of its gradient taken alone from the same generator state, and the generator ends in the
same state, so a batch changes nothing but the last bits of the arithmetic (batched matrix kernels, as for the
broker's forwards). A gradient taken alone from torch's global generator (``generators=[None]``) is TextAttack's
draw for draw (``tests/unit/test_word_alignment.py``).

The twin computes attention eagerly (``attn_implementation="eager"``): PyTorch's fused attention draws its dropout
inside the kernel, from the global generator. A model whose train-mode forward still draws from the global generator
(a functional dropout outside a module) or whose dropout sees a tensor without the batch's shape is not batched
(:attr:`GradientTwin.batchable` is False, found by a probe when the twin is built): its gradients are taken one at a
time from the worker's global stream, as before.
"""

from __future__ import annotations

import contextlib
import copy

#: Which dimensions of a dropout's input run over the text's positions, by the input's number of dimensions.
SEQUENCE_DIMS = {2: (), 3: (1,), 4: (2, 3)}

_DROPOUT = None


class NotBatchable(RuntimeError):
    """A dropout saw a tensor whose positions cannot be cut per example."""


class Draws:
    """The generators (one per example, None = torch's global one) and lengths of the batch being computed."""

    def __init__(self):
        self.generators: list | None = None
        self.lengths: list[int] | None = None

    def noise(self, x, keep: float):
        """Bernoulli(``keep``) noise shaped like ``x``, each example's drawn from its own generator."""
        import torch

        generators = self.generators
        if generators is None:
            raise RuntimeError("the gradient twin's dropout ran outside GradientTwin.gradients")
        if len(generators) == 1:
            return torch.empty_like(x).bernoulli_(keep, generator=generators[0])
        dims = SEQUENCE_DIMS.get(x.dim())
        longest = max(self.lengths)
        if x.shape[0] != len(generators) or dims is None or any(x.shape[d] != longest for d in dims):
            raise NotBatchable(f"a dropout over a tensor of shape {tuple(x.shape)} in a batch of "
                               f"{len(generators)} texts of at most {longest} tokens")
        noise = torch.ones_like(x)
        for b, (generator, length) in enumerate(zip(generators, self.lengths, strict=True)):
            index = [b] + [slice(None)] * (x.dim() - 1)
            for d in dims:
                index[d] = slice(0, length)
            region = noise[tuple(index)]
            region.copy_(torch.empty(region.shape, dtype=x.dtype, device=x.device)
                         .bernoulli_(keep, generator=generator))
        return noise


def _dropout_class():
    global _DROPOUT
    if _DROPOUT is None:
        import torch

        class ExampleDropout(torch.nn.Module):
            """``nn.Dropout`` whose masks come from :class:`Draws` (ATen's CPU arithmetic: noise / (1 - p) * x)."""

            def __init__(self, p: float, draws: Draws):
                super().__init__()
                self.p, self.draws = float(p), draws

            def forward(self, x):
                if not self.training or self.p == 0.0:
                    return x
                if self.p == 1.0:
                    return x * 0.0
                noise = self.draws.noise(x, 1.0 - self.p)
                noise.div_(1.0 - self.p)
                return x * noise

        _DROPOUT = ExampleDropout
    return _DROPOUT


class GradientTwin:
    """A second module tree over the model's own parameter and buffer tensors (no copy of the weights, so it follows
    every update of training), in train mode, with eager attention and :class:`ExampleDropout`: the model itself
    stays in eval mode, so the query broker's forwards run on it meanwhile (TextAttack switches its one model to
    train mode and back)."""

    def __init__(self, model, tokenizer):
        import torch

        # Its own copy: the gradients run on their thread while workers use the wrapper's tokenizer, and a fast
        # tokenizer used from two threads at once fails ("Already borrowed").
        self.tokenizer = copy.deepcopy(tokenizer)
        self.draws = Draws()
        self.model, eager = _twin(model)
        dropout = _dropout_class()
        for parent in list(self.model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is torch.nn.Dropout:
                    setattr(parent, name, dropout(child.p, self.draws))
        self.model.train()
        #: Texts of one call may share a forward: eager attention, right padding, and no draw left to the global
        #: generator (:meth:`_probe`).
        self.batchable = eager and getattr(tokenizer, "padding_side", "right") == "right" and self._probe()

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _probe(self) -> bool:
        """Two texts of different lengths forward in train mode: no draw from torch's global generators, and every
        dropout cuts its input per example."""
        import torch

        texts = ["a", "a b c"]
        generators = [self._generator() for _ in texts]
        cpu = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        try:
            enc, lengths = self._encode(texts)
            with torch.no_grad(), self._drawing(generators, lengths):
                self.model(**enc)
            unchanged = torch.equal(cpu, torch.get_rng_state())
            if cuda is not None:
                unchanged = unchanged and torch.equal(cuda, torch.cuda.get_rng_state(self.device))
            return unchanged
        except NotBatchable:
            return False
        finally:  # the probe leaves the global stream as it found it, whatever it drew
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state(cuda, self.device)

    def _generator(self):
        import torch

        return torch.Generator(device=self.device).manual_seed(0)

    def fork(self):
        """A generator in the state of torch's global generator for the model's device (the worker's stream)."""
        import torch

        generator = torch.Generator(device=self.device)
        generator.set_state(torch.cuda.get_rng_state(self.device) if self.device.type == "cuda"
                            else torch.get_rng_state())
        return generator

    def join(self, generator) -> None:
        """Put ``generator``'s state back into torch's global generator: the draws advanced the worker's stream."""
        import torch

        if self.device.type == "cuda":
            torch.cuda.set_rng_state(generator.get_state(), self.device)
        else:
            torch.set_rng_state(generator.get_state())

    def _encode(self, texts):
        enc = self.tokenizer(list(texts), add_special_tokens=True, padding=True, truncation=True,
                             max_length=self.tokenizer.model_max_length, return_tensors="pt")
        lengths = (enc["attention_mask"].sum(dim=1).tolist() if "attention_mask" in enc
                   else [enc["input_ids"].shape[1]] * len(texts))
        return enc.to(self.device), [int(n) for n in lengths]

    @contextlib.contextmanager
    def _drawing(self, generators, lengths):
        """The dropouts draw from ``generators`` (one per text of ``lengths`` tokens) within this block."""
        self.draws.generators, self.draws.lengths = list(generators), list(lengths)
        try:
            yield
        finally:
            self.draws.generators = self.draws.lengths = None

    def lengths(self, texts) -> list[int]:
        """Tokens of each text as :meth:`gradients` encodes it (for cutting batches)."""
        ids = self.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                             max_length=self.tokenizer.model_max_length)["input_ids"]
        return [len(row) for row in ids]

    def gradients(self, texts, generators=None) -> list[dict]:
        """TextAttack 0.3.11's ``get_grad`` for each text: the label predicted by a first train-mode forward, the
        loss of that label from a second, and the gradient of the word-embedding layer's output, one row per token
        of the text (``{"ids": [1, n] ids, "gradient": [n, hidden]}``). ``generators`` (one per text; None = torch's
        global generator, only for a single text or a timing) draw each text's dropout.

        The loss is summed over the batch, so each text's gradient is its own loss's (TextAttack's mean over its
        one text is the same loss). Two savings leave a single text's result bit for bit TextAttack's: the label
        forward builds no graph, and only the embedding output's gradient is taken (``torch.autograd.grad``)."""
        import torch

        texts = list(texts)
        generators = [None] * len(texts) if generators is None else list(generators)
        if len(generators) != len(texts):
            raise ValueError(f"{len(generators)} generators for {len(texts)} texts")
        if len(texts) > 1 and not self.batchable:
            raise NotBatchable(f"{type(self.model).__name__}'s gradients are taken one text at a time")
        model = self.model
        embedding_layer = model.get_input_embeddings()
        original_state = embedding_layer.weight.requires_grad
        embedding_layer.weight.requires_grad = True  # so the layer's output is part of the graph
        outputs = []

        def keep_output(module, inputs, output):
            outputs.append(output)

        hook = embedding_layer.register_forward_hook(keep_output)
        try:
            enc, lengths = self._encode(texts)
            with self._drawing(generators, lengths):
                # TextAttack's two forwards: the label from the first, the loss (and its dropout) from the second.
                with torch.no_grad():
                    labels = model(**enc).logits.argmax(dim=1)
                outputs.clear()
                logits = model(**enc).logits
                loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
                (gradient,) = torch.autograd.grad(loss, outputs[0])
        finally:
            embedding_layer.weight.requires_grad = original_state
            hook.remove()
        gradient = gradient.detach().cpu().numpy()
        return [{"ids": enc["input_ids"][b: b + 1, :n], "gradient": gradient[b, :n]} for b, n in enumerate(lengths)]


def _twin(model):
    """(twin, eager): the model's architecture with eager attention over the model's own tensors; a deep copy
    sharing them (its own attention) when the class cannot be built that way."""
    import torch

    try:
        with torch.device("meta"):
            twin = type(model)._from_config(copy.deepcopy(model.config), attn_implementation="eager")
        if [name for name, _ in twin.named_modules()] != [name for name, _ in model.named_modules()]:
            raise ValueError("the model's modules are not its class's (changed after it was built)")
        _share_tensors(model, twin)
        return twin, True
    except Exception:  # noqa: BLE001 - any architecture the eager build does not fit keeps its own attention
        shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
        return copy.deepcopy(model, shared), False


def _share_tensors(model, twin) -> None:
    """Point every parameter and buffer of ``twin`` at the model's own tensor object; fail if any is left unset."""
    for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        owner, _, attr = name.rpartition(".")
        module = twin.get_submodule(owner)
        table = module._parameters if attr in module._parameters else module._buffers
        if attr not in table:
            raise KeyError(f"{name}: not in the twin")
        table[attr] = tensor
    left = [n for n, t in [*twin.named_parameters(), *twin.named_buffers()] if t.device.type == "meta"]
    if left:
        raise ValueError(f"tensors of the twin not in the model: {left[:5]}")
