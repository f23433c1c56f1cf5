"""Unset keys of a back-translation augmenter, free of torch: the start-up checks read them (through
:mod:`advtrain.augment`), and :mod:`advtrain.augment.backtranslation` (torch) fills its settings from them. Apart from
both, so that the kind's module need not import the package that imports it."""

#: ``backtranslation.DEFAULTS``. The sampling is A2T's: beam-search multinomial sampling, 5 beams, top-k 50,
#: temperature 0.8.
BACKTRANSLATION_DEFAULTS = {
    "max_length": 128,
    "max_new_tokens": 256,
    "batch_size": 32,
    "num_beams": 5,
    "do_sample": True,
    "temperature": 0.8,
    "top_k": 50,
    "top_p": 1.0,
    "samples": 1,
    "seed": 0,
    "precision": "auto",
}
