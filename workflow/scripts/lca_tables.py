"""Tables 5, 6 and 7 (LCA) with the paper's values beside ours."""

import json

from advtrain.lca.tables import table5, table5_all_tags, table6, table7, write_table6
from advtrain.logs import redirect_to
from advtrain.tables import write_display_table

redirect_to(snakemake.log[0])
results = [json.load(open(path)) for path in snakemake.input.analyses]
methods = snakemake.params.methods
stem = snakemake.output.table5.removesuffix(".csv")
numeric, display = table5(results, methods)
write_display_table(numeric, display, stem, "Table 5: association strength between POS tags and their top neurons "
                    "(match / total words, %); ours (mean ± sd over seeds) beside the paper's.")
table5_all_tags(results).to_csv(snakemake.output.table5_all, index=False)
write_table6(table6(results, methods), snakemake.output.table6.removesuffix(".csv"),
             "Table 6: words that most activate each tag's top neurons (first seed); bold: the word's most "
             "frequent tag in the training data is the tag.")
numeric, display = table7(results, methods)
write_display_table(numeric, display, snakemake.output.table7.removesuffix(".csv"),
                    "Table 7: accuracy (%) of a probe on the top-ranked neurons only (ablation), the paper's beside.")
print(display.to_string(index=False))
