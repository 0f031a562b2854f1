"""Read the weights of a PyTorch Lightning `.ckpt` without running any code from the file.

Lightning checkpoints pickle more than tensors: counters, optimizer states, hyper-parameters and,
depending on the Lightning version, classes from pytorch_lightning or omegaconf (callback keys,
AttributeDict, DictConfig). `torch.load(weights_only=True)` refuses the whole file because of them,
and `weights_only=False` would import and call them. This reader unpickles the archive's data.pkl
itself, with the pure-Python unpickler so that every opcode goes through the methods below:

- tensors and plain containers are rebuilt by our own functions, never by functions the file names;
- names from packages that only hold training metadata (METADATA_PACKAGES) become inert `Opaque`
  records: their modules are never imported and nothing is called on them;
- any other name (os.system, builtins.eval, a script's own class, ...) is refused at once.

Tensor bytes are read only for the `state_dict` entries the caller keeps, so optimizer states and
loss networks cost no memory.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lvm_data.tokenizer.weights import CONVERT_HINT, ZIP_MAGIC, CheckpointError, check_file, first_line

# Top-level packages whose objects may appear outside the weights and are kept as inert records.
METADATA_PACKAGES = frozenset(
    {
        "pytorch_lightning",
        "lightning",
        "lightning_fabric",
        "lightning_utilities",
        "omegaconf",
        "argparse",
        "numpy",
        "pathlib",
        "typing",
        "collections",
        "datetime",
        "torch",
        "taming",
    }
)

MAX_PICKLE_BYTES = 1 << 30  # Lightning's data.pkl is kilobytes to megabytes; the tensors are separate members

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a function or class outside the allowlist."""


@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: torch.dtype


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    """Where a tensor's bytes are; read later, only if the caller keeps the tensor."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class Opaque:
    """An object the checkpoint describes but that is never built: its name and pickled data only."""

    qualname = "?"
    args: tuple
    items: dict
    listitems: list

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args, obj.state, obj.items, obj.listitems = args, None, {}, []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs) -> Opaque:
        return type(self)(*args)

    def __setstate__(self, state) -> None:
        self.state = state

    def __setitem__(self, key, value) -> None:
        self.items[key] = value

    def append(self, value) -> None:
        self.listitems.append(value)

    def extend(self, values) -> None:
        self.listitems.extend(values)

    def __repr__(self) -> str:
        return f"<{self.qualname}, not loaded>"


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor refers to something that is not one of the archive's storages")
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data  # a Parameter's tensor; requires_grad and hooks do not matter for inference


def _latin1_encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")  # how protocol 2 pickles bytes


def _reconstructor(cls, base, state=None):
    if not (isinstance(cls, type) and issubclass(cls, Opaque)):
        raise RefusedGlobal("copyreg._reconstructor of a class outside the allowlist")
    return cls()


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    ("_codecs", "encode"): _latin1_encode,
    ("copyreg", "_reconstructor"): _reconstructor,
    **{("builtins", c.__name__): c for c in (set, frozenset, list, dict, tuple, complex, slice)},
}
_RENAMED_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # protocol 2 pickles use Python 2 names


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickler whose every name lookup goes through the allowlist above."""

    def __init__(self, file):
        super().__init__(file, encoding="utf-8")
        self._opaque: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        module = _RENAMED_MODULES.get(module, module)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module.split(".")[0] in METADATA_PACKAGES:
            qualname = f"{module}.{name}"
            if qualname not in self._opaque:
                self._opaque[qualname] = type("Opaque", (Opaque,), {"qualname": qualname})
            return self._opaque[qualname]
        raise RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported storage reference {str(pid)[:80]}")
        return _Storage(str(pid[2]), pid[1].dtype, int(pid[4]))

    def get_extension(self, code):
        raise RefusedGlobal(f"copyreg extension code {code}")


def read_lightning_state_dict(path: Path, keep: Callable[[str], bool] = lambda name: True) -> dict[str, torch.Tensor]:
    """The `state_dict` tensors of a Lightning checkpoint whose name `keep` accepts, read safely.

    Everything outside `state_dict` is parsed into inert records and dropped. Raises CheckpointError
    naming the file for a refused name (nothing was run), a truncated or malformed archive, or a
    `state_dict` entry that is not a tensor.
    """
    path = Path(path)
    check_file(path)
    with path.open("rb") as f:
        head = f.read(4)
    if head != ZIP_MAGIC:
        raise CheckpointError(
            f"{path}: not a torch zip checkpoint (legacy torch format or another file type); {CONVERT_HINT}"
        )
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated zip archive (no central directory); download it again")
    with zipfile.ZipFile(path) as archive:
        prefix = _archive_prefix(path, archive)
        if archive.getinfo(f"{prefix}data.pkl").file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: the pickled part is over {MAX_PICKLE_BYTES >> 20} MiB; not a checkpoint")
        obj = _unpickle(path, archive.read(f"{prefix}data.pkl"))
        state = _state_dict_of(path, obj)
        storages: dict[str, torch.Tensor] = {}
        try:
            return {
                name: _materialize(path, archive, prefix, ref, storages) for name, ref in state.items() if keep(name)
            }
        except (AttributeError, TypeError, ValueError, OverflowError) as err:
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(
                f"{path}: malformed tensor record ({type(err).__name__}: {first_line(err)}); the file is corrupt"
            ) from err


def _archive_prefix(path: Path, archive: zipfile.ZipFile) -> str:
    names = archive.namelist()
    pickles = [n for n in names if n.rsplit("/", 1)[-1] == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"{path}: a zip file but not a torch.save archive (found {len(pickles)} data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
        raise CheckpointError(
            f"{path}: a TorchScript archive, not a checkpoint; refused because loading it runs its code; {CONVERT_HINT}"
        )
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
        raise CheckpointError(f"{path}: saved on a big-endian machine; {CONVERT_HINT}")
    return prefix


def _unpickle(path: Path, data: bytes):
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except RefusedGlobal as err:
        raise CheckpointError(
            f"{path}: refused: the checkpoint asks to load {err}, which is neither a tensor, a plain container nor "
            f"known training metadata. Loading it could run arbitrary code, and nothing from it was run; "
            f"{CONVERT_HINT}"
        ) from err
    except Exception as err:  # any other failure of a malformed pickle: never let it escape untranslated
        raise CheckpointError(
            f"{path}: malformed checkpoint ({type(err).__name__}: {first_line(err)}); "
            "the file may be truncated or corrupt, download it again"
        ) from err


def _state_dict_of(path: Path, obj) -> dict[str, _TensorRef]:
    state = obj.get("state_dict") if isinstance(obj, dict) else None
    if state is None and isinstance(obj, dict) and obj and all(isinstance(v, _TensorRef) for v in obj.values()):
        state = obj  # a bare state dict saved with a .ckpt name
    if not isinstance(state, dict):
        keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: no 'state_dict' mapping in this checkpoint (found: {keys})")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise CheckpointError(f"{path}: state_dict entry {name!r} is {value!r}, not a tensor; refused")
    return state


def _materialize(
    path: Path, archive: zipfile.ZipFile, prefix: str, ref: _TensorRef, storages: dict[str, torch.Tensor]
) -> torch.Tensor:
    storage = ref.storage
    if storage.key not in storages:
        expected = storage.numel * storage.dtype.itemsize
        try:
            info = archive.getinfo(f"{prefix}data/{storage.key}")
            if info.file_size != expected:  # checked before reading: a forged size cannot exhaust memory
                raise CheckpointError(
                    f"{path}: tensor data {storage.key} has {info.file_size} bytes, expected "
                    f"{expected}; the file is corrupt"
                )
            raw = archive.read(info)
        except (KeyError, zipfile.BadZipFile, OSError) as err:
            raise CheckpointError(
                f"{path}: tensor data {storage.key} unreadable ({first_line(err)}); download the file again"
            ) from err
        flat = torch.frombuffer(bytearray(raw), dtype=storage.dtype) if raw else torch.empty(0, dtype=storage.dtype)
        storages[storage.key] = flat
    try:
        return storages[storage.key].as_strided(ref.size, ref.stride, ref.offset).clone()
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: a tensor lies outside its storage ({first_line(err)}); the file is corrupt"
        ) from err
