"""Download remote checkpoints into the local cache, once.

gs://bucket/prefix: files listed and streamed through lvm_data.storage (pyarrow's GCS filesystem,
which honours STORAGE_EMULATOR_HOST). They are copied into a fresh `.partial-*` folder, the
completion record is written last, and the folder is renamed into place in one step, so a partial
download never looks complete. The next load lists the prefix again and reuses the copy when every
file's name, size and modification time still match.

hf://org/name[@revision][/subfolder]: huggingface_hub's snapshot_download into <cache>/hf (its own
cache: blobs are renamed into place when complete). A record of the files we asked for lets a later
load work offline from that cache; without one, being offline is a clear error saying what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from lvm_data import storage
from lvm_data.tokenizer.weights import CheckpointError, first_line

CHECKPOINT_SUFFIXES = (".json", ".yaml", ".yml", ".safetensors", ".bin", ".ckpt")
TAMING_SUBFOLDERS = ("checkpoints", "configs")

GS = "gs://"
HF = "hf://"
COMPLETE = ".lvm-data-complete.json"
CHUNK = 8 << 20


def cache_name(uri: str) -> str:
    """A readable, collision-free folder name for a URI."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", uri.split("://", 1)[-1]).strip("-")[-60:]
    return f"{slug}-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"


def read_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / COMPLETE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


# ---- gs:// ----


def fetch_gcs(uri: str, cache: Path) -> Path:
    """Local copy of the checkpoint files under a gs:// prefix, downloaded unless an up-to-date copy exists."""
    prefix = uri.rstrip("/")
    listing = gcs_listing(prefix)
    try:
        files = {rel: listing[rel] for rel in select_files(listing)}
    except CheckpointError as err:
        raise CheckpointError(f"{uri}: {err}") from None
    if not files:
        raise CheckpointError(
            f"{uri}: no checkpoint files (.json, .yaml, .safetensors, .bin, .ckpt) under this "
            f"prefix; found {', '.join(sorted(listing)[:5]) or 'nothing'}"
        )
    target = cache / "gcs" / cache_name(prefix)
    record = read_record(target)
    if record is not None and record.get("files") == files:
        return target
    return download_folder(target, files, lambda rel, dest: copy_gcs(f"{prefix}/{rel}", dest, files[rel][0]))


def gcs_listing(prefix: str) -> dict[str, list]:
    """{path relative to the prefix: [size, mtime_ns]} for every object under it."""
    fs, path = storage.filesystem(prefix)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            raise CheckpointError(f"{prefix}: a single file; point at the folder (prefix) that holds the checkpoint")
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except OSError as err:
        raise CheckpointError(
            f"{prefix}: cannot list ({first_line(err)}); check the bucket name and your "
            "credentials (gcloud auth application-default login)"
        ) from err
    files = {i.path[len(path) + 1 :]: [i.size, i.mtime_ns] for i in infos if i.type == pafs.FileType.File}
    if not files:
        raise CheckpointError(f"{prefix}: nothing under this prefix; check the path")
    return files


def copy_gcs(uri: str, dest: Path, size: int) -> None:
    fs, path = storage.filesystem(uri)
    try:
        with fs.open_input_stream(path) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except OSError as err:
        raise CheckpointError(f"{uri}: download failed ({first_line(err)}); try again") from err
    if dest.stat().st_size != size:
        raise CheckpointError(
            f"{uri}: got {dest.stat().st_size} bytes, listed as {size}; the object changed "
            "during the download, try again"
        )


def download_folder(target: Path, files: dict[str, list], copy: Callable[[str, Path], None]) -> Path:
    """Copy `files` into a fresh partial folder, write the record last, then rename it to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".partial-{uuid.uuid4().hex}-{target.name}"
    try:
        for rel in files:
            dest = partial / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            copy(rel, dest)
        (partial / COMPLETE).write_text(json.dumps({"files": files}, sort_keys=True))
        _move_into_place(partial, target, files)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _move_into_place(partial: Path, target: Path, files: dict[str, list]) -> None:
    if target.exists():
        record = read_record(target)
        if record is not None and record.get("files") == files:
            return  # another process completed the same download meanwhile
        stale = target.parent / f".stale-{uuid.uuid4().hex}-{target.name}"
        os.rename(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(partial, target)


# ---- hf:// ----


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    revision: str | None
    subfolder: str


def parse_hf(uri: str) -> HubRef:
    """hf://org/name[@revision][/subfolder] (the revision is a branch, tag or commit without '/')."""
    parts = [p for p in uri[len(HF) :].split("/") if p]
    if len(parts) < 2 or not uri.startswith(HF):
        raise CheckpointError(f"{uri}: expected hf://org/name[@revision][/subfolder]")
    name, _, revision = parts[1].partition("@")
    return HubRef(f"{parts[0]}/{name}", revision or None, "/".join(parts[2:]))


def fetch_hf(uri: str, cache: Path, endpoint: str | None = None) -> Path:
    """Local folder of an hf:// checkpoint: downloaded (or refreshed) online, the last download offline."""
    ref = parse_hf(uri)
    hub_cache = cache / "hf"
    record = hub_cache / "lvm-data-records" / f"{cache_name(uri)}.json"
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    try:
        snapshot, files = _download_hf(uri, ref, hub_cache, endpoint)
    except _unreachable() as err:
        return _offline_copy(uri, ref, record, hub_cache, err)
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps({"snapshot": snapshot, "files": files}))
    os.replace(tmp, record)
    return Path(snapshot) / ref.subfolder


def _download_hf(uri: str, ref: HubRef, hub_cache: Path, endpoint: str | None) -> tuple[str, list[str]]:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi(endpoint=endpoint).model_info(ref.repo_id, revision=ref.revision)
        sub = f"{ref.subfolder}/" if ref.subfolder else ""
        names = [s.rfilename[len(sub) :] for s in info.siblings or [] if s.rfilename.startswith(sub)]
        try:
            files = [sub + rel for rel in select_files(names)]
        except CheckpointError as err:
            raise CheckpointError(f"{uri}: {err}") from None
        if not files:
            raise CheckpointError(
                f"{uri}: no checkpoint files (.json, .yaml, .safetensors, .bin, .ckpt) in "
                f"{ref.repo_id}/{ref.subfolder} at {info.sha}"
            )
        folder = snapshot_download(
            ref.repo_id, revision=info.sha, cache_dir=hub_cache, allow_patterns=files, endpoint=endpoint
        )
    except (RepositoryNotFoundError, GatedRepoError) as err:
        raise CheckpointError(
            f"{uri}: repository {ref.repo_id} not found or not accessible; check the name, or log "
            "in (`hf auth login` or HF_TOKEN) for a private or gated repository"
        ) from err
    except RevisionNotFoundError as err:
        raise CheckpointError(f"{uri}: revision {ref.revision!r} not found in {ref.repo_id}") from err
    except HfHubHTTPError as err:
        raise CheckpointError(f"{uri}: the Hub refused the download ({first_line(err)})") from err
    return folder, files


def _unreachable() -> tuple[type[BaseException], ...]:
    """Errors that mean "no network to the Hub" (huggingface_hub 2.x talks through httpx2)."""
    from huggingface_hub import errors as hub

    errors: list[type[BaseException]] = [
        hub.OfflineModeIsEnabled,
        hub.LocalEntryNotFoundError,
        hub.IncompleteSnapshotError,
        ConnectionError,
        TimeoutError,
    ]
    try:
        import httpx2

        errors.append(httpx2.RequestError)
    except ImportError:
        pass
    return tuple(errors)


def _offline_copy(uri: str, ref: HubRef, record: Path, hub_cache: Path, err: BaseException) -> Path:
    try:
        saved = json.loads(record.read_text())
        snapshot = Path(saved["snapshot"])
        if all((snapshot / f).is_file() for f in saved["files"]):
            return snapshot / ref.subfolder
    except (OSError, ValueError, KeyError, TypeError):
        pass
    revision = f" --revision {ref.revision}" if ref.revision else ""
    raise CheckpointError(
        f"{uri}: cannot reach the Hugging Face Hub ({first_line(err)}) and no earlier download is cached in "
        f"{hub_cache}. Run `hf download {ref.repo_id}{revision} --local-dir DIR` on a machine with access, copy DIR "
        f"here and load DIR{'/' + ref.subfolder if ref.subfolder else ''} by path; or set HF_ENDPOINT to a "
        "reachable mirror"
    ) from err


def select_files(names: Iterable[str]) -> list[str]:
    """Which files of a remote checkpoint folder to download (paths relative to the folder), sorted.

    Top-level files, and those in taming's checkpoints/ and configs/, with a checkpoint suffix. A .bin,
    or a variant such as x.fp16.safetensors, is skipped when x.safetensors sits beside it: the loaders
    would not read it. More than one .ckpt is an error, since loading would not know which to use.
    """
    names = sorted(n for n in names if _wanted(n))
    safetensors = {n for n in names if n.endswith(".safetensors")}
    chosen = [n for n in names if not _shadowed(n, safetensors)]
    ckpts = [n for n in chosen if n.endswith(".ckpt")]
    if len(ckpts) > 1:
        raise CheckpointError(
            f"several .ckpt files ({', '.join(ckpts)}); put the one you want in a folder of its "
            "own with its config.yaml"
        )
    return chosen


def _wanted(name: str) -> bool:
    parts = name.split("/")
    nested_ok = len(parts) == 2 and parts[0] in TAMING_SUBFOLDERS
    return (len(parts) == 1 or nested_ok) and name.endswith(CHECKPOINT_SUFFIXES)


def _shadowed(name: str, safetensors: set[str]) -> bool:
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    if name.endswith(".bin"):
        return any(s.startswith(folder) and "/" not in s[len(folder) :] for s in safetensors)
    stem = name[: -len(".safetensors")]
    if name.endswith(".safetensors") and "." in stem.rsplit("/", 1)[-1]:
        return f"{stem.rsplit('.', 1)[0]}.safetensors" in safetensors  # x.fp16.safetensors beside x.safetensors
    return False
