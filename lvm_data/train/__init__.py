"""A minimal LLaMA trainer that proves the shards train: `lvm-data train`, `generate`, `export`.

config (shapes, vocabulary, settings) -> shards (which files) -> stream (packed, resumable rows) ->
loop (AdamW, checkpoints, validation per source) -> generate (visual prompts) / export (Hugging Face).
"""
