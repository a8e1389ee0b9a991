"""The model: the shared encoder, the tokenizer, and the joint model with one head per task."""
