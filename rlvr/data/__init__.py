"""Problems to train and evaluate on: benchmark and organism suites, fetching them, prompt templates, pools, verl's parquet."""
