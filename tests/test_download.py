"""``python -m vqa_core download``: the files chosen, the call made, and that they suffice.

No test reaches the hub: listings are the real repos' file names (as published; this machine
cannot reach the hub to re-list them), the hub's listing and ``snapshot_download`` are
replaced where a test needs them, and the sufficiency tests load what was selected from
checkpoints built here.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
from huggingface_hub.utils import filter_repo_objects

from tests.hub_listings import BLIP2_NEEDED, BLIP2_OPT_27B, VILT_B32_VQA, VILT_TEXT_FILES
from vqa_core import download as dl
from vqa_core.download import DownloadError, select_files

ROOT = Path(__file__).resolve().parents[1]


def test_blip2_opt_27b_gets_safetensors_and_not_the_duplicate_bin_shards():
    chosen = select_files("Salesforce/blip2-opt-2.7b", BLIP2_OPT_27B)
    assert set(chosen.files) == BLIP2_NEEDED
    assert chosen.weights_format == "safetensors"
    assert set(chosen.skipped) == {
        ".gitattributes",
        "README.md",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
    }


@pytest.mark.parametrize("has_safetensors", [False, True], ids=["bin-only", "with-safetensors"])
def test_vilt_b32_gets_one_copy_of_its_weights(has_safetensors):
    listing = VILT_B32_VQA + (["model.safetensors"] if has_safetensors else [])
    chosen = select_files("dandelin/vilt-b32-finetuned-vqa", listing)
    weights = {"model.safetensors"} if has_safetensors else {"pytorch_model.bin"}
    assert set(chosen.files) == VILT_TEXT_FILES | weights
    assert chosen.weights_format == ("safetensors" if has_safetensors else "bin")
    assert ("pytorch_model.bin" in chosen.skipped) is has_safetensors


def test_sharded_bin_only_repo_still_downloads_its_shards_and_index():
    listing = [
        "config.json",
        "tokenizer.json",
        "README.md",
        "flax_model.msgpack",
        "pytorch_model-00001-of-00003.bin",
        "pytorch_model-00002-of-00003.bin",
        "pytorch_model-00003-of-00003.bin",
        "pytorch_model.bin.index.json",
    ]
    chosen = select_files("someone/bin-only", listing)
    assert chosen.weights_format == "bin"
    assert set(chosen.files) == set(listing) - {"README.md", "flax_model.msgpack"}


def test_single_safetensors_wins_over_shards_as_from_pretrained_reads_it_first():
    listing = ["config.json", "model.safetensors", "model-00001-of-00001.safetensors"]
    assert select_files("a/b", listing).files == ("config.json", "model.safetensors")


def test_subfolders_other_frameworks_and_training_leftovers_are_left_out():
    listing = [
        "config.json",
        "model.safetensors",
        "spiece.model",
        "chat_template.jinja",
        "onnx/model.onnx",
        "onnx/config.json",
        "tf_model.h5",
        "flax_model.msgpack",
        "training_args.bin",
        "optimizer.pt",
    ]
    chosen = select_files("a/b", listing)
    assert chosen.files == (
        "chat_template.jinja",
        "config.json",
        "model.safetensors",
        "spiece.model",
    )


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        (["config.json", "tf_model.h5", "README.md"], "no PyTorch weights"),
        (["model.safetensors", "README.md"], "no config.json"),
    ],
)
def test_a_repo_loading_cannot_use_is_refused_in_one_sentence(listing, expected):
    with pytest.raises(DownloadError, match=expected) as caught:
        select_files("a/b", listing)
    assert "\n" not in str(caught.value)


def test_allow_patterns_match_exactly_the_selection_in_snapshot_downloads_own_filter():
    listing = [*BLIP2_OPT_27B, "vocab[1].json", "[1]config.json"]
    chosen = select_files("Salesforce/blip2-opt-2.7b", listing)
    # The same filter snapshot_download applies: fnmatch, '*' crossing folders.
    matched = set(filter_repo_objects(listing, allow_patterns=chosen.allow_patterns))
    assert matched == set(chosen.files) == BLIP2_NEEDED


# ---- the download call, with the hub replaced ----------------------------------------------


class FakeHub:
    """Serves repos from local folders through the two calls download() makes."""

    def __init__(self, repos: dict[str, Path], sizes: dict[str, int] | None = None):
        self.repos = repos
        self.sizes = sizes or {}
        self.calls: list[dict] = []

    def listing(self, repo_id: str) -> list[str]:
        root = self.repos[repo_id]
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def model_info(self, repo_id, *, revision=None, files_metadata=False, **_):
        assert files_metadata, "sizes are needed for the disk check"
        root = self.repos[repo_id]
        siblings = [
            SimpleNamespace(rfilename=name, size=self.sizes.get(name, (root / name).stat().st_size))
            for name in self.listing(repo_id)
        ]
        return SimpleNamespace(sha="0" * 40, siblings=siblings)

    def snapshot_download(self, repo_id, *, revision=None, cache_dir=None, allow_patterns=None):
        self.calls.append(
            {"repo_id": repo_id, "cache_dir": cache_dir, "allow_patterns": allow_patterns}
        )
        # The hub cache layout from_pretrained reads: refs/main -> snapshots/<commit>/<files>.
        storage = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
        snapshot = storage / "snapshots" / ("0" * 40)
        snapshot.mkdir(parents=True, exist_ok=True)
        (storage / "refs").mkdir(exist_ok=True)
        (storage / "refs" / "main").write_text("0" * 40)
        for name in filter_repo_objects(self.listing(repo_id), allow_patterns=allow_patterns):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.repos[repo_id] / name, snapshot / name)
        return str(snapshot)

    def install(self, monkeypatch):
        monkeypatch.setattr(huggingface_hub.HfApi, "model_info", self.model_info)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def fake_repo(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x" * 10)
    return folder


def test_download_passes_the_selection_and_cache_dir_to_snapshot_download(
    monkeypatch, tmp_path, capsys
):
    repos = {
        "dandelin/vilt-b32-finetuned-vqa": fake_repo(tmp_path / "vilt", VILT_B32_VQA),
        "Salesforce/blip2-opt-2.7b": fake_repo(tmp_path / "blip2", BLIP2_OPT_27B),
    }
    hub = FakeHub(repos, sizes={"model-00001-of-00002.safetensors": 9_960_000_000})
    hub.install(monkeypatch)
    monkeypatch.setattr(dl, "_free_bytes", lambda folder: 10**12)
    cache = tmp_path / "kiosk cache"

    # The Arabic translation pair is left out here; the offline test below fetches it.
    assert dl.main(["--cache-dir", str(cache), "--translation", "off"]) == 0

    assert [call["repo_id"] for call in hub.calls] == list(repos)
    assert all(call["cache_dir"] == str(cache.resolve()) for call in hub.calls)
    assert set(hub.calls[0]["allow_patterns"]) == VILT_TEXT_FILES | {"pytorch_model.bin"}
    assert set(hub.calls[1]["allow_patterns"]) == BLIP2_NEEDED
    out = capsys.readouterr().out.splitlines()
    assert "Salesforce/blip2-opt-2.7b: 13 files, 10.0 GB (safetensors weights" in out[1]
    assert "leaving out 5 files" in out[1]
    assert out[-1] == (
        f"HF_HUB_OFFLINE=1 HF_HUB_CACHE={shlex.quote(str(cache.resolve()))} "
        "python app.py --kiosk --vilt real --blip2 real --translation off"
    )


def test_too_little_disk_is_said_before_anything_is_fetched(monkeypatch, tmp_path, capsys):
    repo = fake_repo(tmp_path / "blip2", BLIP2_OPT_27B)
    hub = FakeHub({"Salesforce/blip2-opt-2.7b": repo}, sizes={"model.safetensors.index.json": 5000})
    hub.install(monkeypatch)
    monkeypatch.setattr(dl, "_free_bytes", lambda folder: 1000)
    with pytest.raises(DownloadError, match=r"needs 5 KB more on disk; .* has 1 KB free"):
        dl.download("Salesforce/blip2-opt-2.7b", cache_dir=tmp_path / "cache")
    assert hub.calls == []
    # Files already in the cache (an interrupted download) do not count again.
    hub.snapshot_download(
        "Salesforce/blip2-opt-2.7b",
        cache_dir=tmp_path / "cache",
        allow_patterns=["model.safetensors.index.json"],
    )
    dl.download("Salesforce/blip2-opt-2.7b", cache_dir=tmp_path / "cache")
    assert "120 B still to fetch" in capsys.readouterr().out


def test_an_unreachable_hub_is_one_sentence_and_a_nonzero_exit(tmp_path):
    # A real network failure through the real client: the hub endpoint is a closed local port.
    env = {
        **os.environ,
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "PYTHONPATH": str(ROOT),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-m", "vqa_core", "download", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 1
    # Only the error line is ours; libraries may log import-time warnings above it.
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: Could not reach the Hugging Face hub to download dandelin/")
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def hub_error(cls: type[Exception]) -> Exception:
    """A hub error as the client raises it, without an HTTP response to build it from."""
    err = cls.__new__(cls)
    Exception.__init__(err, "404 Client Error")
    return err


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (lambda: hub_error(RepositoryNotFoundError), "was not found on the hub"),
        (lambda: hub_error(GatedRepoError), "is gated: accept its terms"),
        (lambda: OSError(errno.ENOSPC, "No space left on device"), "disk ran out of space"),
    ],
    ids=["not-found", "gated", "disk-full"],
)
def test_hub_failures_are_one_sentence(monkeypatch, tmp_path, capsys, raised, expected):
    def model_info(*args, **kwargs):
        raise raised()

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    assert dl.main(["--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


def test_a_bug_is_not_disguised_as_a_network_failure(monkeypatch, tmp_path):
    def model_info(*args, **kwargs):
        raise TypeError("unexpected keyword")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(TypeError):
        dl.main(["--cache-dir", str(tmp_path)])


def test_offline_mode_is_refused_before_any_request(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert dl.main(["--cache-dir", str(tmp_path)]) == 1
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["demo", "auto"])
def test_presets_that_need_no_download_are_refused(value, tmp_path, capsys):
    assert dl.main(["--vilt", value, "--cache-dir", str(tmp_path)]) == 2
    assert "not a hub id to download" in capsys.readouterr().err


# ---- the selected files are enough to load and answer --------------------------------------


def copy_selection(repo: Path, target: Path) -> set[str]:
    listing = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    chosen = select_files("local/repo", listing)
    target.mkdir()
    for name in chosen.files:
        shutil.copyfile(repo / name, target / name)
    return set(chosen.files)


def assert_same_weights(loaded, reference) -> None:
    """Every tensor of ``reference`` is in ``loaded`` with the same values (in its dtype)."""
    mine = loaded.state_dict()
    theirs = reference.state_dict()
    assert mine.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert torch.equal(mine[name].to(tensor.dtype), tensor), name


def assert_same_processor(loaded, reference, text: str) -> None:
    """Same token ids and the same image processor settings: the processor files came along."""
    assert loaded.tokenizer(text)["input_ids"] == reference.tokenizer(text)["input_ids"]
    assert loaded.image_processor.to_dict() == reference.image_processor.to_dict()


def add_leftovers(repo: Path, weights: list[str]) -> None:
    """What hub repos hold beside the weights loading reads; garbage, so loading them fails."""
    for name in [*weights, "README.md", ".gitattributes", "onnx/model.onnx"]:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(b"not weights")


def test_sharded_blip2_with_duplicate_bin_shards_loads_from_the_selection(
    tiny_blip2_dir, tiny_blip2, easy_vqa_sample, tmp_path
):
    from transformers import Blip2ForConditionalGeneration

    from vqa_core import Blip2Answerer

    repo = tmp_path / "repo"
    model = Blip2ForConditionalGeneration.from_pretrained(tiny_blip2_dir)
    model.save_pretrained(repo, max_shard_size="200KB")
    for name in os.listdir(tiny_blip2_dir):
        if not name.startswith("model") and not (repo / name).exists():
            shutil.copyfile(tiny_blip2_dir / name, repo / name)
    shards = sorted(p.name for p in repo.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2, "the test needs a sharded checkpoint"
    add_leftovers(
        repo,
        [f"pytorch_model-{i:05d}-of-{len(shards):05d}.bin" for i in range(1, len(shards) + 1)]
        + ["pytorch_model.bin.index.json"],
    )

    copied = copy_selection(repo, tmp_path / "selected")

    assert {"model.safetensors.index.json", *shards} <= copied
    assert not any(name.endswith(".bin") or "onnx" in name for name in copied)
    # float32 as saved, whatever `auto` would pick on this CPU.
    loaded = Blip2Answerer.from_pretrained(
        str(tmp_path / "selected"), device="cpu", dtype="float32"
    )
    assert_same_weights(loaded.model, model)
    assert_same_processor(loaded.processor, tiny_blip2.processor, "Question: what? Answer:")
    paths, questions, _ = easy_vqa_sample
    assert loaded.answer(paths[0], questions[0], max_new_tokens=5).answer


@pytest.mark.parametrize("weights", ["safetensors", "bin-only"])
def test_vilt_loads_from_the_selection(weights, tiny_vilt_dir, easy_vqa_sample, tmp_path):
    from transformers import ViltForQuestionAnswering

    from vqa_core import ViltAnswerer

    reference = ViltForQuestionAnswering.from_pretrained(tiny_vilt_dir)
    repo = tmp_path / "repo"
    shutil.copytree(tiny_vilt_dir, repo)
    if weights == "bin-only":
        (repo / "model.safetensors").unlink()
        state = {k: v.clone().contiguous() for k, v in reference.state_dict().items()}
        torch.save(state, repo / "pytorch_model.bin")
    else:
        add_leftovers(repo, ["pytorch_model.bin"])

    copied = copy_selection(repo, tmp_path / "selected")

    assert ("pytorch_model.bin" in copied) is (weights == "bin-only")
    loaded = ViltAnswerer.from_pretrained(str(tmp_path / "selected"), device="cpu", dtype="float32")
    assert_same_weights(loaded.model, reference)
    original = ViltAnswerer.from_pretrained(str(tiny_vilt_dir), device="cpu", dtype="float32")
    assert_same_processor(loaded.processor, original.processor, "what shape is it?")
    paths, questions, _ = easy_vqa_sample
    got, expected = (a.answer(paths[0], questions[0]).answers for a in (loaded, original))
    assert [label for label, _ in got] == [label for label, _ in expected]
    # Same weights, same labels; the scores only to float rounding, which kernel choices
    # (threads, batch) may change between two calls.
    assert [score for _, score in got] == pytest.approx([score for _, score in expected], rel=1e-3)


def test_the_printed_line_answers_offline_from_the_downloaded_cache(
    monkeypatch, tmp_path, capsys, tiny_vilt_dir, tiny_blip2_dir, tiny_pair_dir, easy_vqa_sample
):
    """Download (hub replaced) into a cache, then run the printed line's environment and models
    through the one-question CLI (the app would start a server): both models answer offline,
    and the Arabic translation pair (Marian: its tokenizer is two .spm files) loads too."""
    from vqa_core.translation import REAL_TRANSLATION_PAIRS

    into_english, out_of_english = REAL_TRANSLATION_PAIRS["ar"]
    repos = {}
    for repo_id, source, leftovers in (
        ("dandelin/vilt-b32-finetuned-vqa", tiny_vilt_dir, ["pytorch_model.bin"]),
        ("Salesforce/blip2-opt-2.7b", tiny_blip2_dir, ["pytorch_model.bin"]),
        (into_english, tiny_pair_dir / "ar-en", ["tf_model.h5"]),
        (out_of_english, tiny_pair_dir / "en-ar", ["tf_model.h5"]),
    ):
        repos[repo_id] = tmp_path / repo_id
        shutil.copytree(source, repos[repo_id])
        add_leftovers(repos[repo_id], leftovers)
    FakeHub(repos).install(monkeypatch)
    assert dl.main(["--cache-dir", str(tmp_path / "cache")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]

    words = shlex.split(line)
    env_words = [w for w in words if "=" in w and not w.startswith("-")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **dict(w.split("=", 1) for w in env_words)}
    assert env["HF_HUB_OFFLINE"] == "1"
    model_args = words[words.index("--kiosk") + 1 : words.index("--translation")]
    assert model_args == ["--vilt", "real", "--blip2", "real"]
    assert words[words.index("--translation") + 1 :] == ["real"]
    paths, questions, _ = easy_vqa_sample
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vqa_core",
            "--image",
            paths[0],
            "--question",
            questions[0],
            *model_args,
            "--device",
            "cpu",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    blip2_answer = report["blip2"]["answer"]
    assert report["vilt"]["answers"] and isinstance(blip2_answer, str) and blip2_answer, report
    snapshot = tmp_path / "cache" / "models--Salesforce--blip2-opt-2.7b" / "snapshots" / ("0" * 40)
    assert not (snapshot / "pytorch_model.bin").exists()
    pair = subprocess.run(
        [sys.executable, "-c", "from vqa_core.translation import load_translator as load; "
         "t, _, error = load('real', device='cpu'); print(error or t.to_english(['ما لون الشكل؟'])[0])"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
        env={**env, "VQA_TRANSLATION_CACHE": "off"},
    )  # fmt: skip
    assert pair.stdout.strip().splitlines()[-1] == "what color is the shape?", pair.stderr
