"""`python -m train` with a recorder attached, for tests/test_train_distributed.py.

Run it the way `-m train` is run (`accelerate launch ... tests/distributed_probe.py ARGS`,
or plain `python tests/distributed_probe.py ARGS`); it executes the real `train` module
unchanged and records, per process, in ``$PROBE_DIR/rank<N>.json``:

- ``batches``: the training rows (indices into the training split) of every batch this
  process collated, in order (ViLT; BLIP-2's collator sees rebuilt rows, so only sizes);
- ``tokenizer``: a fingerprint of the tokenizer the collator uses;
- ``saves``: every ``save_pretrained`` this process made (model, processor);
- ``writes``: every file under ``--output_dir`` this process opened for writing.

Nothing here changes what training does: a ``row`` column rides along (the collator
ignores unknown keys), and the wrappers call through.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import runpy
import sys
from pathlib import Path

# The repository root, so `train` imports as it does under `python -m`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RANK = int(os.environ.get("RANK", "0"))
RECORD: dict = {"rank": RANK, "batches": [], "tokenizer": None, "saves": [], "writes": []}


def _output_dir(argv: list[str]) -> str:
    return os.path.realpath(argv[argv.index("--output_dir") + 1])


def _watch_writes(output_dir: str) -> None:
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def hook(event: str, args: tuple) -> None:
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path, mode, flags = args
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        wants_write = (mode and any(c in mode for c in "wax+")) or (
            mode is None and flags & writing
        )
        if wants_write and os.path.realpath(os.fspath(path)).startswith(output_dir):
            RECORD["writes"].append(os.path.relpath(os.fspath(path), output_dir))

    sys.addaudithook(hook)


def _install() -> None:
    import transformers

    import train.generative as generative
    import train.run_vqa as run_vqa
    from train.collator import ViltVqaCollator

    real_load_splits = run_vqa.load_splits

    def load_splits_with_rows(*args, **kwargs):
        train, evaluation = real_load_splits(*args, **kwargs)
        return train.add_column("row", list(range(len(train)))), evaluation

    def fingerprint(tokenizer) -> None:
        if RECORD["tokenizer"] is None:
            vocabulary = sorted(tokenizer.get_vocab().items())
            RECORD["tokenizer"] = hashlib.sha256(repr(vocabulary).encode()).hexdigest()

    class RecordingCollator(ViltVqaCollator):
        def __call__(self, examples):
            fingerprint(self.processor.tokenizer)
            RECORD["batches"].append([int(example["row"]) for example in examples])
            return super().__call__(examples)

    class RecordingBlip2Collator(generative.Blip2AnswerCollator):
        def __call__(self, examples):
            fingerprint(self.processor.tokenizer)
            RECORD["batches"].append(len(examples))
            return super().__call__(examples)

    def recording(cls):
        real = cls.save_pretrained

        def save_pretrained(self, *args, **kwargs):
            RECORD["saves"].append(type(self).__name__)
            return real(self, *args, **kwargs)

        cls.save_pretrained = save_pretrained

    run_vqa.load_splits = load_splits_with_rows
    run_vqa.ViltVqaCollator = RecordingCollator
    generative.Blip2AnswerCollator = RecordingBlip2Collator
    recording(transformers.PreTrainedModel)
    recording(transformers.ProcessorMixin)


def _dump() -> None:
    target = Path(os.environ["PROBE_DIR"]) / f"rank{RANK}.json"
    target.write_text(json.dumps(RECORD))


if __name__ == "__main__":
    _watch_writes(_output_dir(sys.argv))
    _install()
    atexit.register(_dump)
    # Exactly what `python -m train ARGS` runs.
    sys.argv = ["train", *sys.argv[1:]]
    runpy.run_module("train", run_name="__main__", alter_sys=True)
