"""Fine-tuning: one Hugging Face Trainer subclass and the method parts that plug into it."""
