"""One attack run's adversarial examples: words changed, sentence-encoder similarity, the recipe's bounds."""

from advtrain.attacks import gather
from advtrain.attacks import resources as res
from advtrain.attacks.run import read_records
from advtrain.attacks.validity import check, sentence_encoder
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
res.import_textattack(snakemake.input.nltk_data)  # NLTK first: TextAttack reads its stopwords on import
records = gather(read_records(p) for p in snakemake.input.records)
frame = check(records, snakemake.wildcards.attack, sentence_encoder(snakemake.input.sentence_encoder))
frame.to_csv(snakemake.output[0], index=False)
print(f"{len(frame)} adversarial examples of {len(records)} records; outside the recipe's bounds: "
      f"{int(frame['exceeds_any'].sum()) if len(frame) else 0}")
