"""Evidence that the pipeline learns: the leak-free split, baselines, the from-scratch experiment."""
