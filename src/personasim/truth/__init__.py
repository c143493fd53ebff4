"""Ground truth: packaged election results and OpinionQA human answer distributions."""
