"""Mutation score of the core modules, each against its own tests (``make mutation``).

mutmut (3.x) plants one small change at a time in a module (a flipped comparison, a changed
constant, a dropped argument) and runs the tests that reach the changed function; a change no
test notices "survives". For each module below this script makes a fresh copy of the tree
(``vqa_core/``, ``train/``, ``ui/``, ``tests/``, ``examples/``, ``pyproject.toml``) in
``.mutation/<module>/``, writes that module's ``[tool.mutmut]`` there (the repository's
section, with only this module mutated and only its own test files run), runs ``mutmut run``
in it and prints:

    module  killed  survived  equivalent  score

mutmut runs each mutant in a worker forked from a process that has already imported the
module, so a change to code that runs once per process (a table built at import, a cached
function) never takes effect there. Every mutant that survives mutmut is therefore judged
again in a fresh interpreter, against all of the module's test files: it counts as killed
when they fail.

The score is killed / (killed + survived), where mutants listed in :data:`EQUIVALENT` (a
change that cannot alter any behaviour, each with the reason) count neither way; a timeout
counts as killed, a mutant no test reaches as survived. Surviving mutants that are not
listed are printed with their diffs. The exit status is 1 when a module scores under
``--fail-under`` (90 by default) or a listed equivalent no longer matches any mutant (the
module changed: check the list).

Each copy stays in ``.mutation/<module>/`` until the next run, so a survivor can be looked at
there: ``cd .mutation/fit && ../../.venv/bin/python -m mutmut show <name>`` (or ``browse``).

    python tools/mutation.py                 # every module, vqa_core/fit.py last
    python tools/mutation.py answer_norm     # one module (its file stem, or its path)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser under its own name
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
# serving: tests/test_error_words.py reads the model server client's sentence codes too.
COPIED = ("vqa_core", "train", "ui", "serving", "tests", "examples")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "artifacts", ".pytest_cache")

# Each module with the test files that are its own.
MODULES: dict[str, tuple[str, ...]] = {
    "vqa_core/answer_norm.py": ("tests/test_answer_norm.py",),
    "train/metric.py": ("tests/test_vqa_metric.py", "tests/test_answer_norm.py"),
    "vqa_core/images.py": (
        "tests/test_images.py",
        "tests/test_images_by_hand.py",
        "tests/test_error_words.py",
    ),
    "vqa_core/quality.py": ("tests/test_quality.py", "tests/test_quality_by_hand.py"),
    "vqa_core/fit.py": (
        "tests/test_fit.py",
        "tests/test_fit_by_hand.py",
        "tests/test_fit_sentences.py",
        "tests/test_fit_counts.py",
        "tests/test_cuda_plan.py",
    ),
}


@dataclass(frozen=True)
class Equivalent:
    """Mutants that cannot change behaviour, found by function and changed line (regexes).

    A mutant matches when its diff removes one line and adds one, the stripped lines match
    ``removed`` and ``added`` in full, and it mutates ``function``.
    """

    module: str
    function: str
    removed: str
    added: str
    why: str


_DRAFT_SCALE = (
    "scale = min(VILT_SHORT_SIDE / min(width, height), VILT_LONG_SIDE / max(width, height), {})"
)
_NO_DRAFT_UPSCALE = (
    "a JPEG draft only ever reduces: a scale above 1 asks for more than the file has, which "
    "decodes at full size exactly as the cap of 1 does"
)

_TABLE_SPLIT = "return dict(entry.{} for entry in _CONTRACTION_TABLE.split())"
_ONE_COLON_EACH = (
    "every entry of the contraction table holds exactly one colon (a word and what it "
    "becomes; tests/test_answer_norm.py checks the table entry by entry), so splitting at "
    "the first colon, at the last, or at every colon gives the same two parts"
)

_RGB_ALREADY = (
    "converting an RGB picture to RGB gives an equal copy, so converting every picture "
    "measures the same as converting only the others"
)
_HISTOGRAM_LENGTH = (
    "the percentile is the first value whose running count passes a share of the total, "
    "never above the largest rise present; the empty bins after that (up to 255, up to 256, "
    "or none) change neither the total nor where the count passes it"
)

_PALETTE_LINE = 'return image.convert("RGBA" if image.has_transparency_data else "RGB")'
_EXTREMA = 'lo, hi = (image if image.mode in ("I", "I;16", "F") else wide).getextrema()'
_WIDE_LINE = 'wide = image if image.mode in ("I;16", "F") else image.convert("F")'
_BYTE_ORDER_LINE = 'order = "I;16L" if sys.byteorder == "little" else "I;16B"'
_REREAD = 'image = Image.frombuffer(order, image.size, image.tobytes(), "raw", order, {})'
_PLAIN = 'plain = {{"RGBA": None, "LA": None, "La": "LA"}}.get(image.mode, {})'
_ORIENTATION = "if image.getexif().get(ExifTags.Base.Orientation, {}) in {}:"
_NO_TURN = (
    "exif_transpose returns an unchanged copy when the orientation is missing, 1, or anything "
    "outside 2-8; only 2-8 turn a picture, and those are turned either way"
)
_MEMORY_ONLY = (
    "it changes only whether memory is copied, freed early or handed back to the system, "
    "never the picture returned or the error raised"
)

_CASE_AND_AUTO = (
    "resolve_placement reads device and dtype names in any case, and a missing or None dtype "
    "is auto, which on the CPU is float32"
)
_UNQUANTIZED_DEFAULT = (
    "every quantization name other than int8, int4, 8bit and 4bit is counted as unquantized, "
    "so how the default is spelled does not matter"
)
_KEPT_INSIDE_DECODER = (
    "the skip list only matters for a module kept in fp32 inside the language model's "
    "decoder; BLIP-2 (the one model here that packs int4) keeps its Q-Former and query tokens "
    "outside OPT, and ViLT has no decoder"
)
_INT8_LAYERS_TOO = (
    "a model with int4 layers (a text generator: BLIP-2) always has layers int8 stores too "
    "(its image encoder), so the sequence is never empty; were it empty, 1 instead of 0 would "
    "still lose to the packing's own 32 MiB in the transient"
)

EQUIVALENT: tuple[Equivalent, ...] = (
    *(
        Equivalent(
            "vqa_core/answer_norm.py",
            "_contractions",
            re.escape(_TABLE_SPLIT.format('split(":", 1)')),
            re.escape(_TABLE_SPLIT.format(split)),
            _ONE_COLON_EACH,
        )
        for split in ('split(":", )', 'rsplit(":", 1)', 'split(":", 2)')
    ),
    Equivalent(
        "vqa_core/images.py",
        "_jpeg_draft_size",
        re.escape(_DRAFT_SCALE.format("1.0")),
        re.escape(_DRAFT_SCALE.format("2.0")),
        _NO_DRAFT_UPSCALE,
    ),
    Equivalent(
        "vqa_core/images.py",
        "_jpeg_draft_size",
        re.escape(_DRAFT_SCALE.format("1.0")),
        re.escape(_DRAFT_SCALE.format("")),
        _NO_DRAFT_UPSCALE,
    ),
    Equivalent(
        "vqa_core/quality.py",
        "_thumbnail",
        re.escape("if scale >= 1.0:"),
        re.escape("if scale > 1.0:"),
        "at a scale of exactly 1 the thumbnail's size is the picture's own, and Pillow's "
        "resize to its own size returns an equal copy",
    ),
    Equivalent(
        "vqa_core/quality.py",
        "_edge_steepness",
        re.escape("step = np.abs(np.diff(channel, axis=1))"),
        re.escape("step = np.abs(np.diff(channel, ))"),
        "numpy's diff takes the last axis unless told, which for a 2-D channel is axis 1",
    ),
    *(
        Equivalent(
            "vqa_core/quality.py",
            "_edge_steepness",
            re.escape("histogram = np.bincount(rise.ravel(), minlength=256)"),
            re.escape(f"histogram = np.bincount(rise.ravel(), {length})"),
            _HISTOGRAM_LENGTH,
        )
        for length in ("", "minlength=257")
    ),
    Equivalent(
        "vqa_core/quality.py",
        "_sharpness",
        re.escape("return (steep_x + steep_y) / rise if rise > 0 else 0.0"),
        re.escape("return (steep_x + steep_y) / rise if rise > 1 else 0.0"),
        "only rises of at least the edge floor (8) are summed, so the total is 0 or at "
        "least 8 and is never 1",
    ),
    *(
        Equivalent(
            "vqa_core/quality.py",
            "measure_quality",
            re.escape('thumb = _thumbnail(image if image.mode == "RGB" else image.convert("RGB"))'),
            re.escape(f'thumb = _thumbnail(image if {test} else image.convert("RGB"))'),
            _RGB_ALREADY,
        )
        for test in (
            '(image.mode == "RGB") and False',
            'image.mode == "XXRGBXX"',
            'image.mode == "rgb"',
        )
    ),
    Equivalent(
        "vqa_core/quality.py",
        "measure_quality",
        re.escape("flags=(),"),
        re.escape("flags=None,"),
        "the measured picture's flags are replaced by with_thresholds before it is returned",
    ),
    Equivalent(
        "vqa_core/images.py",
        "_narrow",
        re.escape(_PALETTE_LINE),
        re.escape("return image.convert(None)"),
        "Pillow's convert without a mode expands a palette to RGBA when it carries transparency "
        "and to RGB when it does not: the same choice",
    ),
    Equivalent(
        "vqa_core/images.py",
        "_narrow",
        re.escape(_PALETTE_LINE),
        re.escape(
            'return image.convert("RGBA" if (image.has_transparency_data) or True else "RGB")'
        ),
        "a palette without transparency made RGBA is opaque everywhere, and _flatten lays an "
        "opaque picture onto white with every pixel kept",
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_narrow",
            re.escape(_WIDE_LINE),
            re.escape(_WIDE_LINE.replace('"F") else', f'"{mode}") else')),
            'a float picture is then given convert("F"), an unchanged copy',
        )
        for mode in ("XXFXX", "f")
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_narrow",
            re.escape(_BYTE_ORDER_LINE),
            re.escape(added),
            "every machine this runs on (x86-64, arm64) is little-endian: the test is true there "
            "and the big-endian name is never read",
        )
        for added in (
            'order = "I;16L" if (sys.byteorder == "little") or True else "I;16B"',
            'order = "I;16L" if sys.byteorder == "little" else "XXI;16BXX"',
            'order = "I;16L" if sys.byteorder == "little" else "i;16b"',
        )
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_narrow",
            re.escape(_REREAD.format("0, 1")),
            re.escape(_REREAD.format(args)),
            "Pillow's raw decoder reads a stride below a row's length (1) as the row's length, and "
            "rows top to bottom for any positive step (checked: the same pixels)",
        )
        for args in ("1, 1", "0, 2")
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_narrow",
            re.escape(_EXTREMA),
            re.escape(_EXTREMA.replace(old, new)),
            "an I;16 or F picture is its own wide picture, so its extrema are read from the "
            "same pixels either way",
        )
        for old, new in (
            ('"I;16"', '"XXI;16XX"'),
            ('"I;16"', '"i;16"'),
            ('"F")', '"XXFXX")'),
            ('"F")', '"f")'),
        )
    ),
    Equivalent(
        "vqa_core/images.py",
        "_narrow",
        re.escape("scale = 255.0 / (hi - lo) if hi > lo else 0.0"),
        re.escape("scale = 255.0 / (hi - lo) if hi > lo else 1.0"),
        "when the darkest and the brightest are equal every pixel is the darkest, so v - lo is "
        "0 whatever the scale",
    ),
    Equivalent(
        "vqa_core/images.py",
        "_narrow",
        re.escape('return stretched.convert("L")'),
        re.escape("return stretched.convert(None)"),
        "_flatten makes the float picture RGB instead, and Pillow cuts floats to 8 bits the same "
        "way into RGB as into L (checked on 4,096 values from -50 to 300)",
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_flatten",
            re.escape('if image.mode == "RGB":'),
            re.escape(f'if image.mode == "{mode}":'),
            'an RGB picture then reaches the last line, convert("RGB"), an equal copy',
        )
        for mode in ("XXRGBXX", "rgb")
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_flatten",
            re.escape(_PLAIN.format('"RGBA"')),
            re.escape(_PLAIN.format('"RGBA"').replace(old, new)),
            "a mode the table no longer names takes the default, RGBA: RGBA made RGBA is a "
            "copy, and LA made RGBA lies on white as the same grey",
        )
        for old, new in (
            ('"RGBA": None', '"XXRGBAXX": None'),
            ('"RGBA": None', '"rgba": None'),
            ('"LA": None', '"XXLAXX": None'),
            ('"LA": None', '"la": None'),
        )
    ),
    Equivalent(
        "vqa_core/images.py",
        "_flatten",
        re.escape("rgba = image if plain is None else image.convert(plain)"),
        re.escape("rgba = image if (plain is None) and False else image.convert(plain)"),
        "convert(None) copies an RGBA or LA picture in its own mode",
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_upright",
            re.escape(_ORIENTATION.format("1", "range(2, 9)")),
            re.escape(_ORIENTATION.format(default, values)),
            _NO_TURN,
        )
        for default, values in (
            ("None", "range(2, 9)"),
            ("", "range(2, 9)"),
            ("2", "range(2, 9)"),
            ("1", "range(9)"),
            ("1", "range(2, 10)"),
        )
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_pad_extreme_aspect",
            re.escape(f"{branch} {a} >= {b} * max_ratio:"),
            re.escape(f"{branch} {a} > {b} * max_ratio:"),
            "a picture exactly 4:1 gets a canvas of its own size with itself pasted at the "
            "corner: the same pixels as no canvas",
        )
        for branch, a, b in (("if", "width", "height"), ("elif", "height", "width"))
    ),
    Equivalent(
        "vqa_core/images.py",
        "_decode",
        re.escape("image = _upright(image, owned=not decoded)"),
        re.escape("image = _upright(image, owned=None)"),
        _MEMORY_ONLY,
    ),
    Equivalent(
        "vqa_core/images.py",
        "_decode",
        re.escape("traceback.clear_frames(err.__traceback__)"),
        re.escape("traceback.clear_frames(None)"),
        _MEMORY_ONLY,
    ),
    Equivalent(
        "vqa_core/images.py",
        "_decode",
        r"image = None  # the decoded file's pixels, .*",
        r"image = \"\"  # the decoded file's pixels, .*",
        _MEMORY_ONLY,
    ),
    Equivalent(
        "vqa_core/images.py",
        "_decode",
        re.escape("if estimate > _TRIM_ABOVE_BYTES:"),
        re.escape("if estimate >= _TRIM_ABOVE_BYTES:"),
        _MEMORY_ONLY,
    ),
    Equivalent(
        "vqa_core/images.py",
        "_decode",
        re.escape("if max_side and max(image.size) > max_side:"),
        re.escape("if max_side and max(image.size) >= max_side:"),
        "thumbnail only ever shrinks, so a picture exactly at the bound comes back as it was "
        "(a copy of it, when it is the caller's)",
    ),
    Equivalent(
        "vqa_core/images.py",
        "_decode",
        re.escape('if getattr(image, "is_animated", False):'),
        re.escape('if getattr(image, "is_animated", True):'),
        "every Pillow picture can seek to frame 0, and for one without frames that changes nothing",
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_narrow",
            re.escape(_PALETTE_LINE),
            re.escape(_PALETTE_LINE.replace('else "RGB"', f'else "{mode}"')),
            "Pillow 12 converts a palette picture asked for a mode it does not know into its "
            "palette's own mode, RGB: the same picture",
        )
        for mode in ("XXRGBXX", "rgb")
    ),
    Equivalent(
        "vqa_core/images.py",
        "_decode",
        re.escape('if getattr(image, "is_animated", False):'),
        re.escape('if getattr(image, "is_animated", None):'),
        "None is as false as False",
    ),
    *(
        Equivalent(
            "vqa_core/images.py",
            "_decode",
            re.escape('image.draft("RGB", _jpeg_draft_size(width, height))'),
            re.escape(f"image.draft({mode}, _jpeg_draft_size(width, height))"),
            "Pillow's JPEG draft changes the decoded mode only when asked for L or YCbCr; any "
            "other mode, RGB included, leaves it as it is and only the size is drafted",
        )
        for mode in ("None", '"XXRGBXX"', '"rgb"')
    ),
    *(
        Equivalent(
            "vqa_core/fit.py",
            function,
            rf"def {function}\(self, dtype: torch\.dtype, "
            r'quantization: str = "none"\) -> int:',
            rf"def {function}\(self, dtype: "
            r'torch\.dtype, quantization: str = "(XXnoneXX|NONE)"\) -> int:',
            _UNQUANTIZED_DEFAULT,
        )
        for function in ("weight_bytes", "need_bytes")
    ),
    Equivalent(
        "vqa_core/fit.py",
        "weight_bytes",
        re.escape("floats = self.other_params * width + upcast.get(dtype, 0) * (4 - width)"),
        re.escape("floats = self.other_params * width + upcast.get(dtype, 1) * (4 - width)"),
        "the fallback is taken only for float32 (the one other dtype a placement takes), where "
        "it is multiplied by 4 - 4 = 0",
    ),
    *(
        Equivalent(
            "vqa_core/fit.py",
            function,
            r'(.*)resolve_placement\("cpu", "float32"\)(.*)',
            r'(.*)resolve_placement\(("CPU", "float32"|"cpu", "FLOAT32"|"cpu", None|'
            r'"cpu", )\)(.*)',
            _CASE_AND_AUTO,
        )
        for function in ("_cpu_float", "_candidates")
    ),
    Equivalent(
        "vqa_core/fit.py",
        "_cpu_float",
        r'(.*)resolve_placement\("cpu", "bfloat16"\)(.*)',
        r'(.*)resolve_placement\(("CPU", "bfloat16"|"cpu", "BFLOAT16")\)(.*)',
        _CASE_AND_AUTO,
    ),
    Equivalent(
        "vqa_core/fit.py",
        "_cpu_float",
        re.escape('placement = resolve_placement("cpu", dtype)'),
        re.escape('placement = resolve_placement("CPU", dtype)'),
        _CASE_AND_AUTO,
    ),
    Equivalent(
        "vqa_core/fit.py",
        "_meta_counts",
        r'(keep|strict) = set\(getattr\(model, "(_keep_in_fp32_modules|'
        r'_keep_in_fp32_modules_strict)", None\) or \(\)\)',
        r'(keep|strict) = set\(getattr\(model, "(_keep_in_fp32_modules|'
        r'_keep_in_fp32_modules_strict)", \) or \(\)\)',
        "transformers' PreTrainedModel defines both attributes (None unless a model sets "
        "them), so getattr never needs its default",
    ),
    Equivalent(
        "vqa_core/fit.py",
        "_meta_counts",
        re.escape("int4 = _int4_counts(model, keep | strict, sizes)"),
        re.escape("int4 = _int4_counts(model, keep & strict, sizes)"),
        _KEPT_INSIDE_DECODER,
    ),
    Equivalent(
        "vqa_core/fit.py",
        "_int4_counts",
        re.escape("packed = int4_layer_names(model, skip=kept)[0]"),
        re.escape("packed = int4_layer_names(model, )[0]"),
        _KEPT_INSIDE_DECODER,
    ),
    Equivalent(
        "vqa_core/fit.py",
        "_int4_counts",
        r"int8_largest = max\(\(n for name, n in sizes\.items\(\) if name not in "
        r"packed_names\), default=0\)",
        r"int8_largest = max\(\(n for name, n in sizes\.items\(\) if name not in "
        r"packed_names\), (default=None|default=1|)\)",
        _INT8_LAYERS_TOO,
    ),
    Equivalent(
        "vqa_core/fit.py",
        "plan_load",
        re.escape(
            'valid = [q for q in QUANTIZATION_CHOICES if _candidates(device, "auto", q, None)]'
        ),
        r"valid = \[q for q in QUANTIZATION_CHOICES if _candidates\(device, "
        r'("AUTO"|None), q, None\)\]',
        _CASE_AND_AUTO,
    ),
    Equivalent(
        "vqa_core/fit.py",
        "plan_load",
        re.escape("gpu_free: int | None = None"),
        r'gpu_free: int \| None = ""',
        "gpu_free is set each time a choice on the GPU alone is tried and read only when one "
        "was, so its first value is never read",
    ),
)


def _module_stem(module: str) -> str:
    return Path(module).stem


def _toml_value(value: object) -> str:
    # Strings, numbers, booleans and lists of them: JSON spells those as TOML does.
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _pyproject_for(module: str, tests: tuple[str, ...]) -> str:
    """The repository's pyproject.toml with ``[tool.mutmut]`` set for ``module`` alone."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    settings = dict(tomllib.loads(text).get("tool", {}).get("mutmut", {}))
    settings["only_mutate"] = [module]
    settings["pytest_add_cli_args_test_selection"] = list(tests)
    # The page's words (ui/) and the model server's client (serving/): tests/test_error_words.py
    # checks that every error code either raises has words there.
    settings["also_copy"] = [*settings.get("also_copy", []), "ui", "serving"]
    # Drop the repository's own section (up to the next table) and write this module's.
    kept = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    lines = [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    return kept.rstrip("\n") + "\n\n[tool.mutmut]\n" + "\n".join(lines) + "\n"


def _prepare(module: str, tests: tuple[str, ...]) -> Path:
    work = WORK / _module_stem(module)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in COPIED:
        shutil.copytree(ROOT / name, work / name, ignore=IGNORED)
    (work / "pyproject.toml").write_text(_pyproject_for(module, tests), encoding="utf-8")
    return work


def _mutmut(work: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    # mutmut forks each mutant's worker from a process that has already run the tests; a
    # model test there starts torch's OpenMP threads, and a forked child that needs them
    # waits forever (images' model tests hung until mutmut's timeout counted them as killed).
    # With one thread torch starts no pool, so the forked workers run the tests for real.
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=work,
        env=env,
        check=False,
        text=True,
        capture_output=capture,
    )


def _exit_codes(work: Path, module: str) -> dict[str, int | None]:
    meta = work / "mutants" / f"{module}.meta"
    return json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    return removed, added


def _function_of(mutant: str) -> str:
    # vqa_core.fit.x_plan_load__mutmut_12, or a method: vqa_core.fit.xǁFootprintǁneed_bytes__mutmut_3
    name = mutant.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    return name.split("ǁ")[-1] if "ǁ" in name else name.removeprefix("x_")


def _matches(entry: Equivalent, module: str, function: str, diff: str) -> bool:
    removed, added = _changed_lines(diff)
    return (
        entry.module == module
        and entry.function == function
        and len(removed) == len(added) == 1
        and re.fullmatch(entry.removed, removed[0]) is not None
        and re.fullmatch(entry.added, added[0]) is not None
    )


# mutmut's exit codes (mutmut.stats.status_by_exit_code): which count as killed.
_KILLED = {1, 3, 36, -24, 24, 152, 255, 37}
_SURVIVED = {0, 5, 33}


@dataclass
class Score:
    module: str
    killed: int
    survived: list[tuple[str, str]]  # (mutant, diff)
    equivalent: list[tuple[str, Equivalent]]
    other: dict[str, int | None]  # not checked, suspicious, segfault, skipped
    unmatched: list[Equivalent]

    @property
    def percent(self) -> float:
        tried = self.killed + len(self.survived)
        return 100.0 * self.killed / tried if tried else 100.0


def _fresh_verdict(work: Path, mutant: str, tests: tuple[str, ...]) -> bool:
    """True when the module's tests fail with ``mutant`` active from the first import on."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MUTANT_UNDER_TEST": mutant,
    }
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        run = subprocess.run(
            command, cwd=work / "mutants", env=env, capture_output=True, check=False, timeout=600
        )
    except subprocess.TimeoutExpired:
        return True  # a hang is a change the tests notice, as mutmut counts timeouts
    return run.returncode != 0


def score_module(module: str, jobs: int) -> Score:
    tests = MODULES[module]
    work = _prepare(module, tests)
    print(f"== {module}: mutmut in {work.relative_to(ROOT)}, tests {' '.join(tests)}", flush=True)
    run = _mutmut(work, "run", "--max-children", str(jobs))
    if run.returncode != 0:
        raise SystemExit(f"mutmut run failed on {module} (exit {run.returncode})")
    codes = _exit_codes(work, module)
    suspects = sorted(mutant for mutant, code in codes.items() if code in _SURVIVED)
    print(f"\n{len(suspects)} survivors of mutmut judged again in fresh interpreters", flush=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        verdicts = dict(zip(suspects, pool.map(lambda m: _fresh_verdict(work, m, tests), suspects)))
    killed = 0
    survived: list[tuple[str, str]] = []
    equivalent: list[tuple[str, Equivalent]] = []
    other: dict[str, int | None] = {}
    listed = [entry for entry in EQUIVALENT if entry.module == module]
    used: set[Equivalent] = set()
    for mutant, code in sorted(codes.items()):
        if code in _KILLED or verdicts.get(mutant):
            killed += 1
            continue
        if code not in _SURVIVED:
            other[mutant] = code
            continue
        diff = _mutmut(work, "show", mutant, capture=True).stdout
        function = _function_of(mutant)
        entry = next((e for e in listed if _matches(e, module, function, diff)), None)
        if entry is None:
            survived.append((mutant, diff))
        else:
            used.add(entry)
            equivalent.append((mutant, entry))
    unmatched = [entry for entry in listed if entry not in used]
    return Score(module, killed, survived, equivalent, other, unmatched)


def _resolve(name: str) -> str:
    for module in MODULES:
        if name in (module, _module_stem(module)):
            return module
    raise SystemExit(f"unknown module {name!r}; choose from: {', '.join(MODULES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="file stems or paths (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fail-under", type=float, default=90.0)
    args = parser.parse_args(argv)
    modules = [_resolve(name) for name in args.modules] or list(MODULES)
    scores = [score_module(module, args.jobs) for module in modules]

    failed = False
    for score in scores:
        for mutant, diff in score.survived:
            print(f"\nsurvived: {mutant}\n{diff.strip()}")
        for mutant, code in score.other.items():
            print(f"\nnot judged ({code}): {mutant}")
        for entry in score.unmatched:
            failed = True
            print(
                f"\nlisted as equivalent but no longer a mutant of {entry.module} "
                f"({entry.function}: {entry.removed!r} -> {entry.added!r}): update EQUIVALENT"
            )
    print(f"\n{'module':<26}{'killed':>8}{'survived':>10}{'equivalent':>12}{'score':>9}")
    for score in scores:
        print(
            f"{score.module:<26}{score.killed:>8}{len(score.survived):>10}"
            f"{len(score.equivalent):>12}{score.percent:>8.1f}%"
        )
        failed |= score.percent < args.fail_under or bool(score.other)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
