"""Curation: filters and deduplication between decode and tokenize (issue 8).

Every filter is a plain function here; pipelines/ only wires them (pipelines/curation.py). What a filter
removes becomes a `filtered` ledger row with its own reason code (lvm_data.outcomes.Reason), never a
silent drop, and is counted per reason in the unit markers, the manifest, the audit and the report.

Families and pieces (one module each):
- images.py      image bounds on the original decoded size, near-blank / low-variance images
- video.py       near-static clips and clips that span a scene cut (split or dropped)
- blocklist.py   user-supplied file hashes, perceptual hashes and key/URL patterns
- hashes.py      decoded-pixel digests and 64-bit perceptual hashes (pHash, dHash)
- banding.py     Hamming-distance search by banded hashes (pigeonhole: exact recall for a threshold)
- minhash.py     MinHash over token n-grams and its LSH banding (token-space near duplicates)
- survivors.py   the stable rule that decides which of two duplicates survives
- config.py      the job file's `filters:` block as frozen dataclasses, parsed once per job (CurationConfig)
- stage.py       the per-source filter stage the job runs on every item (before and after decoding)
- index.py       the job-wide image dedup index (built once per output, read by every unit; the engine
                 reads and decodes its candidates: lvm_data.job.dedup_index)
- sentence_dedup.py  token-space dedup: sentence signatures and decisions
- units.py       what curation adds to a unit's commit (removals, counts, signature and sample files)
- store.py       where curation keeps its files under OUT/curation/
- removed_samples.py  thumbnails of removed items kept per unit for the report
- report.py      what each filter removed, with a contact sheet
- planted.py     a corpus with planted duplicates and junk, and precision/recall against it
"""
