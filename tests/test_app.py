"""The app's API, served for real and called through gradio_client, on tiny models.

Every api_name the README documents (/answer, /vilt, /blip2) is called; concurrent callers
must be batched; a model that failed to load leaves the other one answering.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client, handle_file

import app as vqa_app
import ui
from tests.doubles import RecordingAnswerer
from ui import about as ui_about
from ui import answering as ui_answering
from ui import example_pictures as ui_examples
from ui.messages import describe_agreement, pick_language, summary_line
from vqa_core import Services
from vqa_core.agreement import compare_answers

pytestmark = pytest.mark.slow


def serve(services: Services, **options):
    demo = ui.build_demo(services, **options)
    kwargs = ui.launch_kwargs()
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **kwargs)
    client = Client(demo.local_url, verbose=False, download_files=False)
    return demo, client


@pytest.fixture(scope="module")
def recorded(tiny_vilt, tiny_blip2):
    vilt = RecordingAnswerer(tiny_vilt, delay=0.2)
    blip2 = RecordingAnswerer(tiny_blip2, delay=0.2)
    demo, client = serve(Services(vilt=vilt, blip2=blip2), max_batch_size=8)
    yield vilt, blip2, client
    client.close()
    demo.close()


def _labels(label_value: dict) -> list[tuple[str, float]]:
    return [(c["label"], c["confidence"]) for c in label_value["confidences"]]


# ---- agreement logic -------------------------------------------------------------------


def test_agreement_uses_vqa_normalization_and_reports_rank():
    vilt = [("2", 0.9), ("red", 0.5), ("circle", 0.2)]
    assert compare_answers(vilt, "Two.").status == "agree_top"
    partial = compare_answers(vilt, "the circle")
    assert (partial.status, partial.rank, partial.k) == ("agree_rank", 3, 3)
    assert "number 3 of 3" in describe_agreement(partial)
    assert compare_answers(vilt, "blue").status == "disagree"
    assert "not among ViLT's top 3" in describe_agreement(compare_answers(vilt, "blue"))
    assert compare_answers(vilt, "  ").status == "blip2_empty"
    assert compare_answers(None, "red").status == "missing"
    assert compare_answers(vilt, None).status == "missing"


def test_summary_line_and_language():
    line = summary_line([("circle", 0.8)], "a circle")
    assert line.startswith("ViLT: circle. BLIP-2: a circle.") and "agree" in line
    arabic = summary_line([("circle", 0.8)], "circle", "ar")
    assert "متفقان" in arabic
    assert pick_language("ar-EG,ar;q=0.9,en;q=0.8") == "ar"
    assert pick_language("fr-FR,en;q=0.5") == "en"
    assert pick_language(None) == "en"


# ---- served API --------------------------------------------------------------------------


def test_api_answer_vilt_blip2(recorded, easy_vqa_sample):
    _, _, client = recorded
    paths, questions, _ = easy_vqa_sample
    image, question = handle_file(paths[0]), questions[0]

    label, vilt_status = client.predict(image, question, 3, api_name="/vilt")
    assert len(label["confidences"]) == 3
    scores = [c["confidence"] for c in label["confidences"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert "s ·" in vilt_status and "batch of" in vilt_status

    answer, blip2_status = client.predict(image, question, 5, 1, api_name="/blip2")
    assert isinstance(answer, str) and answer and "batch of" in blip2_status

    label2, vilt_status2, answer2, blip2_status2, line = client.predict(
        image, question, 4, 5, 1, api_name="/answer"
    )
    assert len(label2["confidences"]) == 4
    assert "batch of" in vilt_status2 and "batch of" in blip2_status2
    assert answer2 == answer  # greedy decoding is deterministic
    assert line == summary_line(_labels(label2), answer2)
    assert line.startswith(f"ViLT: {label2['confidences'][0]['label']}.")


def test_api_rejects_bad_input_with_a_message(recorded):
    _, _, client = recorded
    label, status = client.predict(None, "what shape?", 3, api_name="/vilt")
    assert not label and "add an image" in status
    answer, status = client.predict(None, "what shape?", 5, 1, api_name="/blip2")
    assert answer == "" and "add an image" in status


def test_api_rejects_empty_question(recorded, easy_vqa_sample):
    _, _, client = recorded
    label, status = client.predict(handle_file(easy_vqa_sample[0][0]), "   ", 3, api_name="/vilt")
    assert not label and status.startswith("⚠️") and "question" in status.lower()


def test_api_explains_unreadable_and_oversized_uploads(recorded, tmp_path):
    import os

    _, _, client = recorded
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a picture")
    label, status = client.predict(handle_file(str(broken)), "what shape?", 3, api_name="/vilt")
    assert not label and status.startswith("⚠️") and "Traceback" not in status
    assert "image" in status.lower()
    answer, status = client.predict(
        handle_file(str(broken)), "what shape?", 5, 1, api_name="/blip2"
    )
    assert answer == "" and status.startswith("⚠️") and "image" in status.lower()
    huge = tmp_path / "huge.png"
    huge.write_bytes(os.urandom(11 * 1024 * 1024))
    with pytest.raises(ValueError, match="maximum file size"):
        client.predict(handle_file(str(huge)), "what shape?", 3, api_name="/vilt")


def test_uploads_reach_the_intake_untouched(recorded, tmp_path):
    """Gradio's Image converts non-RGB uploads itself unless told not to: alpha would be
    dropped (transparent areas turn black, not white) and 16-bit grey would clip to white,
    before vqa_core's intake could see the file. HEIC, which Pillow alone cannot open,
    must get through Gradio to the intake too."""
    import pillow_heif
    from PIL import Image

    from vqa_core import load_image

    vilt, blip2, client = recorded
    logo = Image.new("RGBA", (96, 64), (0, 0, 0, 0))  # transparent black background
    logo.paste((200, 30, 30, 255), (0, 0, 48, 64))
    logo_path = tmp_path / "logo.png"
    logo.save(logo_path)
    grey = Image.new("I;16", (64, 64), 3000)
    grey.paste(9000, (0, 0, 32, 64))
    grey_path = tmp_path / "scan16.png"
    grey.save(grey_path)
    phone_path = tmp_path / "phone.heic"  # an iPhone's own format
    pillow_heif.from_pillow(logo.convert("RGB")).save(phone_path, quality=90)
    for path in (logo_path, grey_path, phone_path):
        vilt.images.clear()
        blip2.images.clear()
        client.predict(handle_file(str(path)), "what color is it?", 3, 5, 1, api_name="/answer")
        expected = load_image(str(path)).tobytes()
        assert [image.tobytes() for image in vilt.images] == [expected]
        assert [image.tobytes() for image in blip2.images] == [expected]
    assert load_image(str(logo_path)).getpixel((90, 30)) == (255, 255, 255)


def test_heic_preview_swaps_in_the_intake_picture_and_kiosk_deletes_it(tiny_vilt, tmp_path):
    import gradio as gr
    import pillow_heif
    from PIL import Image

    from vqa_core import load_image

    heic = tmp_path / "phone.heic"
    pillow_heif.from_pillow(Image.new("RGB", (40, 30), (10, 120, 200))).save(heic, quality=90)
    picture = load_image(heic)
    png = tmp_path / "plain.png"
    picture.save(png)
    kiosk = ui.VQAHandlers(
        Services(vilt=tiny_vilt), cache_dir=str(tmp_path), original_grace_seconds=0.5
    )
    assert (
        kiosk.pictures.browser_preview(str(png)) == gr.skip() and png.exists()
    )  # browsers draw PNG
    swapped = kiosk.pictures.browser_preview(str(heic))
    assert swapped.tobytes() == picture.tobytes()
    # An Ask pressed while the swap was on its way still names the original: it is answered.
    labels, statuses = kiosk.answering.answer_vilt([str(heic)], ["what colour is it?"], [3])
    assert labels[0] is not None and not statuses[0].startswith("⚠"), statuses
    deadline = time.monotonic() + 10
    while heic.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not heic.exists()  # then kiosk mode keeps no copy beyond the one on screen
    broken = tmp_path / "broken.heic"
    broken.write_bytes(b"not a picture")
    assert kiosk.pictures.browser_preview(str(broken)) == gr.skip()  # the answers will explain it


def test_heic_original_is_kept_outside_kiosk_mode(tiny_vilt, tmp_path):
    import pillow_heif
    from PIL import Image

    heic = tmp_path / "phone.heic"
    pillow_heif.from_pillow(Image.new("RGB", (40, 30), (10, 120, 200))).save(heic, quality=90)
    hosted = ui.VQAHandlers(Services(vilt=tiny_vilt), original_grace_seconds=0.0)
    hosted.pictures.browser_preview(str(heic))
    time.sleep(0.2)
    assert heic.exists()  # Gradio's own cache expiry removes it


def test_sixteen_concurrent_calls_are_batched(recorded, easy_vqa_sample):
    vilt, blip2, client = recorded
    paths, questions, _ = easy_vqa_sample
    vilt.batch_sizes.clear()
    blip2.batch_sizes.clear()

    def call(i):
        return client.predict(
            handle_file(paths[i % len(paths)]), questions[i % len(questions)], 3, 5, 1,
            api_name="/answer",
        )  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(16)))
    assert len(results) == 16
    for label, vilt_status, answer, blip2_status, line in results:
        assert len(label["confidences"]) == 3
        assert not vilt_status.startswith("⚠️") and not blip2_status.startswith("⚠️")
        assert line == summary_line(_labels(label), answer)
    assert sum(vilt.batch_sizes) == 16 and sum(blip2.batch_sizes) == 16
    assert max(vilt.batch_sizes) > 1, vilt.batch_sizes
    assert max(vilt.batch_sizes) <= 8


def test_failed_model_leaves_the_other_answering(tiny_vilt, easy_vqa_sample):
    reason = "The BLIP-2 model could not be loaded from /nowhere: no such folder."
    demo, client = serve(Services(vilt=tiny_vilt, blip2=None, blip2_error=reason))
    try:
        image = handle_file(easy_vqa_sample[0][0])
        label, vilt_status, answer, blip2_status, line = client.predict(
            image, "what shape is this?", 3, 5, 1, api_name="/answer"
        )
        assert len(label["confidences"]) == 3 and "batch of" in vilt_status
        assert answer == "" and reason in blip2_status and "not available" in blip2_status
        assert "Only one model answered" in line
    finally:
        client.close()
        demo.close()


def test_model_crash_stays_in_its_column(tiny_blip2, easy_vqa_sample):
    from vqa_core import InferenceError

    class CrashingVilt:
        name = "crashing-vilt"
        placement = tiny_blip2.placement

        def answer_batch(self, images, questions, **kwargs):
            raise RuntimeError("CUDA error: device-side assert triggered")

    class OutOfMemoryVilt(CrashingVilt):
        def answer_batch(self, images, questions, **kwargs):
            raise InferenceError("ViLT ran out of memory; try a smaller image.")

    image = handle_file(easy_vqa_sample[0][0])
    for vilt, shown in (
        (CrashingVilt(), "unexpected error"),
        (OutOfMemoryVilt(), "ran out of memory"),
    ):
        demo, client = serve(Services(vilt=vilt, blip2=tiny_blip2))
        try:
            label, vilt_status, answer, blip2_status, line = client.predict(
                image, "what shape?", 3, 5, 1, api_name="/answer"
            )
            expected = tiny_blip2.answer(easy_vqa_sample[0][0], "what shape?", max_new_tokens=5)
            assert answer == expected.answer
        finally:
            client.close()
            demo.close()
        assert not label and "could not answer" in vilt_status and shown in vilt_status
        assert "CUDA error" not in vilt_status
        assert "batch of 1" in blip2_status and "Only one model answered" in line


def test_queue_bound_gives_busy_not_hang(tiny_vilt, easy_vqa_sample):
    from gradio_client.utils import QueueError

    slow = RecordingAnswerer(tiny_vilt, delay=1.5)
    demo, client = serve(
        Services(vilt=slow, blip2=None, blip2_error="off"), queue_size=2, max_batch_size=1
    )
    try:
        image = handle_file(easy_vqa_sample[0][0])
        jobs = [client.submit(image, "what shape?", 3, api_name="/vilt") for _ in range(6)]
        outcomes = []
        for job in jobs:
            try:
                job.result(timeout=60)
                outcomes.append("ok")
            except QueueError:
                outcomes.append("busy")
        assert "busy" in outcomes and "ok" in outcomes, outcomes
    finally:
        client.close()
        demo.close()


def test_parse_args_defaults_and_environment(monkeypatch):
    # Whatever the developer's shell exports (VQA_KIOSK=1, a port), the defaults are checked.
    for variable in vqa_app.ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    args = vqa_app.parse_args([])
    assert (args.host, args.port, args.kiosk, args.accessible) == ("127.0.0.1", 7860, False, False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    args = vqa_app.parse_args(["--kiosk", "--accessible", "--vilt", "demo"])
    assert (args.host, args.port, args.kiosk, args.accessible, args.vilt) == (
        "0.0.0.0", 7999, True, True, "demo",
    )  # fmt: skip
    # Uploads are deleted after an hour, on a kiosk after five minutes.
    assert ui.build_demo(Services()).delete_cache == (600, 3600)
    assert ui.build_demo(Services(), kiosk=True).delete_cache == (60, 300)
    kiosk = ui.launch_kwargs(kiosk=True)
    assert kiosk["footer_links"] == [] and kiosk["max_file_size"]
    assert "share" not in kiosk


def test_main_refuses_an_impossible_placement_in_one_line():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(vqa_app.__file__).resolve().parent
    done = subprocess.run(
        [sys.executable, str(root / "app.py"), "--dtype", "float128"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "choose one of: auto, float32, float16, bfloat16" in done.stderr
    assert "Traceback" not in done.stderr


def test_about_panel_names_models_and_demo(tiny_vilt):
    from vqa_core.registry import ModelChoice

    services = Services(
        vilt=tiny_vilt,
        blip2_error="missing",
        vilt_choice=ModelChoice("vilt", "/m/vilt-easyvqa", "demo preset", is_demo=True),
    )
    text = ui_about.about_markdown(services)
    # Every visitor reads it: the model's folder by name, never where it lies on the server.
    assert "vilt-easyvqa" in text and "/m/" not in text and "cpu / float32" in text
    assert "not loaded: missing" in text and "simple shapes" in text


def test_main_serves_named_models_from_the_command_line(
    tiny_vilt_dir, tiny_blip2_dir, easy_vqa_sample
):
    """`python app.py --vilt DIR --blip2 DIR` loads once, prints models and URL, and answers."""
    import re
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(vqa_app.__file__).resolve().parent
    command = [sys.executable, str(root / "app.py"), "--vilt", str(tiny_vilt_dir), "--blip2", str(tiny_blip2_dir),
               "--device", "cpu", "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Running on local URL" in line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output, output
        # auto is bf16 where the CPU runs it natively (vqa_core.fit), fp32 elsewhere.
        assert re.search(r"ViLT: .*tiny-vilt.* on cpu / (bfloat16|float32) \(", output), output
        assert re.search(r"BLIP-2: .*tiny-blip2.* on cpu / (bfloat16|float32) \(", output), output
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        label, vilt_status, answer, blip2_status, line = client.predict(
            handle_file(easy_vqa_sample[0][0]), easy_vqa_sample[1][0], 3, 5, 1, api_name="/answer"
        )
        assert len(label["confidences"]) == 3 and "batch of 1" in blip2_status
        assert line == summary_line(_labels(label), answer) and "batch of" in vilt_status
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    "examples", [ui_examples.DEMO_EXAMPLES, ui_examples.PHOTO_EXAMPLES], ids=["demo", "photos"]
)
def test_every_example_is_in_the_repo_and_passes_the_intake(examples):
    from vqa_core import load_image

    for path, question in examples:
        image = load_image(ui_examples.EXAMPLES_DIR / path)
        assert image.mode == "RGB" and min(image.size) >= 64, path
        assert question.strip()
    licences = (ui_examples.EXAMPLES_DIR / "LICENSE.md").read_text()
    assert all(path.rsplit("/", 1)[-1] in licences for path, _ in examples)  # source, licence


def test_answer_reads_each_upload_once_for_both_models(
    tiny_vilt, tiny_blip2, easy_vqa_sample, monkeypatch
):
    reads = []
    real_open_picture = ui_answering.open_picture
    monkeypatch.setattr(
        ui_answering, "open_picture", lambda src: reads.append(src) or real_open_picture(src)
    )
    handlers = ui.VQAHandlers(Services(vilt=tiny_vilt, blip2=tiny_blip2))
    paths, questions, _ = easy_vqa_sample
    labels, vilt_statuses, answers, blip2_statuses, lines = handlers.answering.answer_both(
        paths[:3], questions[:3], [5] * 3, [4] * 3, [1] * 3
    )
    assert reads == paths[:3]  # decoded once per request, shared by ViLT and BLIP-2
    assert all(labels) and all(isinstance(answer, str) and answer for answer in answers)
    assert not any(status.startswith("⚠") for status in vilt_statuses + blip2_statuses)
    assert all(lines)


def test_only_loads_one_model_and_the_other_column_says_why(tiny_vilt_dir, tiny_blip2_dir):
    """`app.py --only vilt`: what the fit sentence suggests when BLIP-2 cannot fit."""
    from vqa_core import load_services

    assert vqa_app.parse_args(["--only", "vilt"]).only == "vilt"
    services = load_services(str(tiny_vilt_dir), str(tiny_blip2_dir), device="cpu", only="vilt")
    assert services.vilt is not None and services.blip2 is None
    assert "--only vilt" in services.blip2_error and services.vilt_error is None
    handlers = ui.VQAHandlers(services)
    _labels, statuses = handlers.answering.answer_blip2(["x.png"], ["what?"], [4], [1])
    assert statuses[0].startswith("⚠") and "--only vilt" in statuses[0]
