"""The bundled sample corpus (`lvm-data sample`, `make sample`): every LVM data type from media that
installed packages ship, with no download and no GPU.

- `inputs.assemble(OUT/media)` copies the packaged photos, videos, LFW faces and stereo pair into a
  normal folder layout and writes the annotations derived from them (pseudolabels: Canny edges, SLIC
  superpixel segmentation; the stereo pair's disparity as depth);
- `job.sample_job(out, tokenizer)` is the job file over those folders (OUT/job.yaml), writing its
  corpus to OUT/corpus; the CLI glue (lvm_data/cli/sample.py) runs it like `lvm-data run`;
- `sheet.source_sheet(OUT/corpus)` is the preview: one sentence of every source, one row each.
"""
