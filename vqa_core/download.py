"""``python -m vqa_core download``: fetch exactly the files the loaders read, for offline kiosks.

A hub repo often holds more than loading needs: ``Salesforce/blip2-opt-2.7b`` keeps its
weights twice (safetensors shards and the older ``pytorch_model-*.bin`` shards, 15.5 GB
each), plus model cards and files for other frameworks. :func:`select_files` picks, from a
repo's file listing, the configs, the processor and tokenizer files and one copy of the
weights (safetensors when the repo has them, ``.bin`` otherwise); :func:`download` hands that
selection to ``huggingface_hub.snapshot_download``, which owns the progress bars, the
resumption of interrupted files and the hub cache layout that ``from_pretrained`` reads.
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .errors import VQAError
from .registry import MODEL_KINDS, REAL_CHECKPOINTS
from .translation import REAL_TRANSLATION_PAIRS

__all__ = [
    "DownloadError",
    "Selection",
    "build_parser",
    "download",
    "list_repo",
    "main",
    "offline_command",
    "select_files",
]

logger = logging.getLogger(__name__)

# Files ``from_pretrained`` of a model, its generation config, its processor (image
# processor + tokenizer) may read, by the names transformers 5 uses for them.
CONFIG_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "video_preprocessor_config.json",
        "chat_template.json",
        "chat_template.jinja",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
    }
)
# Slow tokenizers' vocabularies under their other names: SentencePiece models (spiece.model,
# tokenizer.model, sentencepiece.bpe.model; Marian's source.spm and target.spm) and tiktoken
# ranks.
TOKENIZER_FILE = re.compile(r"[^/]+\.(model|spm|tiktoken)")

SAFETENSORS_SINGLE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SHARD = re.compile(r"model-\d+-of-\d+\.safetensors")
BIN_SINGLE = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
BIN_SHARD = re.compile(r"pytorch_model-\d+-of-\d+\.bin")


class DownloadError(VQAError):
    """A checkpoint could not be listed or fetched; the message says why and what to do."""


@dataclass(frozen=True)
class Selection:
    """What to fetch from one repo: the files loading reads, and what was left out."""

    repo_id: str
    files: tuple[str, ...]
    skipped: tuple[str, ...]
    weights_format: str  # "safetensors" or "bin"

    @property
    def allow_patterns(self) -> list[str]:
        # snapshot_download matches with fnmatch: escape '[' so every name matches only itself.
        return [name.replace("[", "[[]") for name in self.files]


def _weights(names: set[str]) -> tuple[str, list[str]]:
    """The one copy of the weights ``from_pretrained`` would read, in its order of preference."""
    if SAFETENSORS_SINGLE in names:
        return "safetensors", [SAFETENSORS_SINGLE]
    shards = sorted(name for name in names if SAFETENSORS_SHARD.fullmatch(name))
    if shards:
        index = [SAFETENSORS_INDEX] if SAFETENSORS_INDEX in names else []
        return "safetensors", index + shards
    if BIN_SINGLE in names:
        return "bin", [BIN_SINGLE]
    shards = sorted(name for name in names if BIN_SHARD.fullmatch(name))
    if shards:
        index = [BIN_INDEX] if BIN_INDEX in names else []
        return "bin", index + shards
    return "", []


def select_files(repo_id: str, listing: Iterable[str]) -> Selection:
    """Choose, from a repo's file listing, exactly the files loading the model needs.

    Only top-level files count: transformers reads a checkpoint from the repo's root, and
    subfolders hold other exports (ONNX, quantized copies) that loading never opens.
    """
    names = {name for name in listing if "/" not in name}
    weights_format, weights = _weights(names)
    if not weights:
        found = ", ".join(sorted(names)) or "no files"
        raise DownloadError(
            f"{repo_id} has no PyTorch weights (model.safetensors, model-*-of-*.safetensors, "
            f"pytorch_model.bin or pytorch_model-*-of-*.bin); it holds: {found}."
        )
    if "config.json" not in names:
        raise DownloadError(f"{repo_id} has no config.json, so it is not a transformers model.")
    chosen = {name for name in names if name in CONFIG_FILES or TOKENIZER_FILE.fullmatch(name)}
    chosen.update(weights)
    return Selection(
        repo_id=repo_id,
        files=tuple(sorted(chosen)),
        skipped=tuple(sorted(names - chosen)),
        weights_format=weights_format,
    )


@dataclass(frozen=True)
class RepoListing:
    """A repo's files at one commit, with their sizes when the hub reports them."""

    repo_id: str
    commit: str
    sizes: dict[str, int | None]


def list_repo(repo_id: str, revision: str | None = None) -> RepoListing:
    """List a hub repo's files and sizes (one request), with the commit they belong to."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    sizes = {sibling.rfilename: sibling.size for sibling in info.siblings or ()}
    return RepoListing(repo_id=repo_id, commit=str(info.sha), sizes=sizes)


def _format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit in ("B", "KB") else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _bytes_to_fetch(listing: RepoListing, files: Sequence[str], cache_dir: Path) -> int:
    """Bytes of ``files`` not yet in the cache at ``listing.commit`` (unknown sizes count 0)."""
    from huggingface_hub import try_to_load_from_cache

    missing = 0
    for name in files:
        cached = try_to_load_from_cache(
            listing.repo_id, name, cache_dir=cache_dir, revision=listing.commit
        )
        if not isinstance(cached, str):
            missing += listing.sizes.get(name) or 0
    return missing


def _free_bytes(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport errors of whichever HTTP client this huggingface_hub uses (httpx or httpx2)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name in ("httpx2", "httpx", "requests"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        for error_name in ("TransportError", "RequestException"):
            error = getattr(module, error_name, None)
            if isinstance(error, type) and issubclass(error, BaseException):
                found.append(error)
    return tuple(found)


def _explain(repo_id: str, err: BaseException) -> DownloadError | None:
    """One sentence saying what to do about a hub or network failure; ``None`` for a bug."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, OfflineModeIsEnabled) or (
        isinstance(err, LocalEntryNotFoundError) and isinstance(err.__cause__, OfflineModeIsEnabled)
    ):
        return DownloadError(
            f"Cannot download {repo_id}: HF_HUB_OFFLINE is set; run the download without it "
            "(it is for the kiosk afterwards)."
        )
    if isinstance(err, GatedRepoError):
        return DownloadError(
            f"{repo_id} is gated: accept its terms on huggingface.co and log in "
            "(`hf auth login` or HF_TOKEN), then run the download again."
        )
    if isinstance(err, RepositoryNotFoundError):
        return DownloadError(
            f"{repo_id} was not found on the hub (check the id; a private repo needs "
            "`hf auth login` or HF_TOKEN)."
        )
    if isinstance(err, RevisionNotFoundError):
        return DownloadError(f"{repo_id} has no such revision on the hub.")
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return DownloadError(
            f"The disk ran out of space while downloading {repo_id}; free some space and run "
            "the download again (finished files are kept, the rest resumes)."
        )
    if isinstance(err, (HfHubHTTPError, LocalEntryNotFoundError, OSError, *_network_errors())):
        return DownloadError(
            f"Could not reach the Hugging Face hub to download {repo_id} "
            f"({type(err).__name__}); check the network and run the command again "
            "(finished files are kept, the rest resumes)."
        )
    return None


@dataclass(frozen=True)
class Downloaded:
    selection: Selection
    folder: str
    fetched_bytes: int


def download(
    repo_id: str,
    *,
    cache_dir: str | Path | None = None,
    revision: str | None = None,
    out: TextIO | None = None,
) -> Downloaded:
    """Fetch the files loading ``repo_id`` needs into the hub cache; return its snapshot folder.

    Raises :class:`DownloadError` with one sentence when the hub cannot be reached, the repo
    does not exist, or the disk cannot hold the files.
    """
    from huggingface_hub import constants, snapshot_download

    cache = Path(cache_dir or constants.HF_HUB_CACHE).expanduser().resolve()
    try:
        listing = list_repo(repo_id, revision)
    except Exception as err:  # what the hub or network can cause becomes one sentence
        if (explained := _explain(repo_id, err)) is None:
            raise
        raise explained from err
    selection = select_files(repo_id, listing.sizes)
    total = sum(listing.sizes.get(name) or 0 for name in selection.files)
    needed = _bytes_to_fetch(listing, selection.files, cache)
    free = _free_bytes(cache)
    if needed > free:
        raise DownloadError(
            f"{repo_id} needs {_format_bytes(needed)} more on disk; {cache} has "
            f"{_format_bytes(free)} free. Free some space or pass --cache-dir on a larger disk."
        )
    left_out = sum(listing.sizes.get(name) or 0 for name in selection.skipped)
    print(
        f"{repo_id}: {len(selection.files)} files, {_format_bytes(total)} "
        f"({selection.weights_format} weights; {_format_bytes(needed)} still to fetch); "
        f"leaving out {len(selection.skipped)} files ({_format_bytes(left_out)}) "
        "that loading does not read.",
        file=out or sys.stdout,
        flush=True,
    )
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=str(cache),
            allow_patterns=selection.allow_patterns,
        )
    except Exception as err:  # as above
        if (explained := _explain(repo_id, err)) is None:
            raise
        raise explained from err
    return Downloaded(selection=selection, folder=str(folder), fetched_bytes=needed)


def offline_command(
    models: dict[str, str], cache_dir: str | Path, *, translation: bool = False
) -> str:
    """The one line that starts the kiosk on these downloads with the network off."""
    parts = ["HF_HUB_OFFLINE=1", f"HF_HUB_CACHE={shlex.quote(str(cache_dir))}"]
    parts += ["python", "app.py", "--kiosk"]
    for kind in MODEL_KINDS:
        repo_id = models[kind]
        parts += [
            f"--{kind}",
            "real" if repo_id == REAL_CHECKPOINTS[kind] else shlex.quote(repo_id),
        ]
    parts += ["--translation", "real" if translation else "off"]
    return " ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vqa_core download",
        description=(
            "Fetch the files the app needs to load ViLT and BLIP-2 (configs, processor and "
            "tokenizer files, one copy of the weights, safetensors preferred) into the "
            "Hugging Face cache, so a kiosk can run with the network off."
        ),
    )
    for kind, title in (("vilt", "ViLT"), ("blip2", "BLIP-2")):
        parser.add_argument(
            f"--{kind}",
            default=REAL_CHECKPOINTS[kind],
            metavar="ID",
            help=f"{title} hub id (default: {REAL_CHECKPOINTS[kind]}; 'real' means the same)",
        )
    parser.add_argument(
        "--translation",
        choices=("real", "off"),
        default="real",
        help=f"also fetch the Arabic<->English opus-mt pair ({' + '.join(REAL_TRANSLATION_PAIRS['ar'])})"
        " that lets the page take Arabic questions (default: real; off skips it)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="hub cache folder to fill (default: $HF_HUB_CACHE, else $HF_HOME/hub)",
    )
    return parser


def _hub_id(kind: str, requested: str) -> str:
    requested = requested.strip()
    if requested == "real":
        return REAL_CHECKPOINTS[kind]
    if requested in ("auto", "demo") or Path(requested).expanduser().exists():
        raise DownloadError(
            f"--{kind} {requested!r} is not a hub id to download; name one such as "
            f"{REAL_CHECKPOINTS[kind]} (the embedded demo models and local folders need no download)."
        )
    return requested


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from huggingface_hub import constants

    cache = Path(args.cache_dir or constants.HF_HUB_CACHE).expanduser().resolve()
    models: dict[str, str] = {}
    try:
        for kind in MODEL_KINDS:
            models[kind] = _hub_id(kind, getattr(args, kind))
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if constants.HF_HUB_OFFLINE:
        print(
            "error: HF_HUB_OFFLINE is set, so nothing can be downloaded; run the download "
            "without it (it is for the kiosk afterwards).",
            file=sys.stderr,
        )
        return 1
    try:
        for kind in MODEL_KINDS:
            download(models[kind], cache_dir=cache)
        translation = args.translation == "real"
        for repo_id in REAL_TRANSLATION_PAIRS["ar"] if translation else ():
            download(repo_id, cache_dir=cache)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("Done. Start the kiosk offline with:")
    print(offline_command(models, cache, translation=translation))
    return 0
