"""Where models run and at which precision (the GPU with bf16/fp16 when present, else the CPU in fp32), and which
GPU a job gets on a workstation with several (:func:`claim_job_gpu`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advtrain.config import PRECISIONS, resolve_precision

# torch is imported where it is used: a job claims its GPU (below) before anything touches CUDA.


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def precision(setting: str = "auto") -> str:
    import torch

    cuda = torch.cuda.is_available()
    return resolve_precision(setting, cuda, cuda and torch.cuda.is_bf16_supported())


def autocast(setting: str = "auto"):
    """The precision context for inference at the resolved setting (see :func:`precision_context`)."""
    return precision_context(precision(setting))


@contextlib.contextmanager
def precision_context(resolved: str, device_type: str | None = None):
    """Run the block at a resolved precision: ``fp32`` as is; ``tf32``: fp32 with TF32 matrix products (CUDA; the
    process-wide setting is restored afterwards); ``bf16``/``fp16``: autocast to that type on ``device_type`` (the
    GPU when there is one, else the CPU's autocast, which the precision benchmark uses)."""
    import torch

    if resolved not in PRECISIONS:
        raise ValueError(f"precision: {resolved!r} is not one of {PRECISIONS}")
    device_type = device_type or ("cuda" if torch.cuda.is_available() else "cpu")
    if resolved == "fp32":
        yield
    elif resolved == "tf32":
        before = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(before)
    else:
        dtype = torch.bfloat16 if resolved == "bf16" else torch.float16
        with torch.autocast(device_type=device_type, dtype=dtype):
            yield


# ---------------------------------------------------------------------------------------------------- GPU claims
# A workstation with several GPUs runs several GPU jobs at once (the `gpu` resource of profiles/default); each job
# claims one of the visible GPUs for its whole life and sees only that one (CUDA_VISIBLE_DEVICES, set before CUDA
# starts). A claim is a set of exclusive `flock`s on slot files in a per-user folder: the kernel drops them when the
# process ends, however it ends, so a killed job never leaves a GPU claimed. A GPU has `slots_per_gpu` slots
# (`devices.attack_shards_per_gpu`): an attack shard takes one, every other GPU job takes all of them.


def visible_gpus(environ=None, query=None) -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them: that variable when set (CUDA stops at the
    first negative entry), else the indices ``nvidia-smi`` lists, else none. ``query`` replaces ``nvidia-smi``."""
    env = os.environ if environ is None else environ
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        names = []
        for name in (v.strip() for v in value.split(",")):
            if not name or name.startswith("-"):
                break
            names.append(name)
        return names
    if query is None:
        def query():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=60, check=True).stdout
            except (OSError, subprocess.SubprocessError):
                return []
            return [line.strip() for line in out.splitlines() if line.strip()]
    return list(query())


_CLAIMS: list = []  # this process's claims, held until it ends


def default_claim_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"advtrain-gpu-claims-{os.getuid()}"


class GpuClaim:
    """Slots ``slots`` of GPU ``device`` held through the open files ``handles`` (closing them frees the GPU)."""

    def __init__(self, device: str, slots: list[int], handles: list):
        self.device, self.slots, self._handles = device, slots, handles

    def release(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []

    def __repr__(self):
        return f"GpuClaim(device={self.device!r}, slots={self.slots})"


def _slot_file(folder: Path, device: str, slot: int) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in device)
    return folder / f"gpu-{safe}.slot{slot}.lock"


def _try_lock(path: Path):
    handle = open(path, "a+")  # stays open: the lock lives as long as the file does
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def try_claim(devices: list[str], slots_per_gpu: int, whole: bool, folder: Path) -> GpuClaim | None:
    """One attempt: a whole free GPU (``whole``), or one slot on the fullest GPU that has a free one; else None.

    Slots go to the GPU with the fewest free slots first, so shards fill one GPU before they start on the next and
    whole GPUs stay free for the jobs that need one.
    """
    if slots_per_gpu < 1:
        raise ValueError(f"devices.attack_shards_per_gpu must be at least 1; got {slots_per_gpu}")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    held: dict[str, list] = {}
    for device in devices:
        held[device] = [(slot, h) for slot in range(slots_per_gpu)
                        if (h := _try_lock(_slot_file(folder, device, slot))) is not None]
    need = slots_per_gpu if whole else 1
    fitting = [d for d in devices if len(held[d]) >= need]
    chosen = min(fitting, key=lambda d: (len(held[d]), devices.index(d))) if fitting else None
    claim = None
    for device, locks in held.items():
        keep = locks[:need] if device == chosen else []
        for _, handle in locks[len(keep):]:
            handle.close()
        if keep:
            claim = GpuClaim(device, [slot for slot, _ in keep], [h for _, h in keep])
    return claim


def claim_gpu(devices: list[str], slots_per_gpu: int = 1, whole: bool = True, folder: Path | None = None, *,
              poll_seconds: float = 5.0, environ=None, log=print) -> GpuClaim | None:
    """Claim a GPU among ``devices`` (waiting while every one is taken) and make it this process's only visible GPU.

    None when there is no GPU. Must run before CUDA is initialised (first thing in a job's script).
    """
    if not devices:
        return None
    torch_module = sys.modules.get("torch")
    if torch_module is not None and torch_module.cuda.is_initialized():
        raise RuntimeError("claim_gpu: CUDA is already initialised in this process; claim the GPU before using it")
    folder = Path(folder) if folder else default_claim_dir()
    waited = None
    while (claim := try_claim(devices, slots_per_gpu, whole, folder)) is None:
        if waited is None:
            waited = time.monotonic()
            log(f"[devices] every GPU of {', '.join(devices)} is claimed ({folder}); waiting for one")
        time.sleep(poll_seconds)
    if waited is not None:
        log(f"[devices] waited {time.monotonic() - waited:.0f} s")
    (os.environ if environ is None else environ)["CUDA_VISIBLE_DEVICES"] = claim.device
    _CLAIMS.append(claim)  # held until the process ends
    log(f"[devices] claimed GPU {claim.device} (slot(s) {claim.slots} of {slots_per_gpu})")
    return claim


def claim_job_gpu(smk, shareable: bool = False) -> GpuClaim | None:
    """A Snakemake job's claim: none when the job asks for no ``gpu`` resource (SLURM hands out GPUs itself, see
    profiles/slurm) or there is no GPU; ``shareable`` (attack shards) takes one slot, anything else a whole GPU."""
    if int(getattr(smk.resources, "gpu", 0) or 0) < 1:
        return None
    settings = smk.config.get("devices") or {}
    return claim_gpu(visible_gpus(), int(settings.get("attack_shards_per_gpu") or 1), whole=not shareable,
                     folder=settings.get("claim_dir"))
