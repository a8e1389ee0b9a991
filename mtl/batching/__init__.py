"""From records to training batches: prepare a task's data, featurize, order, pad, and the multi-task stream."""
