"""Linguistic Correlation Analysis (Dalvi et al. 2019) of POS-tagging models: the paper's Tables 5-7."""
