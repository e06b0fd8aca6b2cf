"""The page's door for pictures (``ui.intake``), checked without a server: which values reach
the intake, and which pictures kiosk cleanup may delete."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from ui.intake import PictureHolds, RefusedImage, check_picture, open_picture
from vqa_core import ImageInputError


@pytest.fixture
def upload_root(tmp_path) -> Path:
    root = tmp_path / "uploads"
    (root / "abc123").mkdir(parents=True)
    return root


def _picture(folder: Path, name: str = "photo.png", size: int = 64) -> Path:
    path = folder / name
    path.write_bytes(b"\x89PNG" + b"\0" * size)
    return path


def test_a_file_in_the_upload_folder_passes_and_is_marked_as_used(upload_root):
    path = _picture(upload_root / "abc123")
    os.utime(path, (1_000_000, 1_000_000))
    before = path.stat().st_ctime
    value, refusal = check_picture({"path": str(path)}, roots=[upload_root])
    assert refusal is None and value["path"] == str(path.resolve())
    # The sweep reads the change time: reading the picture must renew it.
    assert path.stat().st_mtime > 1_000_000 and path.stat().st_ctime >= before


@pytest.mark.parametrize(
    "make",
    [
        lambda root, outside: {"path": str(outside)},
        lambda root, outside: {"path": str(root / "abc123" / ".." / ".." / outside.name)},
        lambda root, outside: {"path": str(root / "abc123" / "link.png")},  # a link out
        lambda root, outside: {"path": str(root / "abc123" / "gone.png")},
        lambda root, outside: {"path": str(root) + "/abc123/\0.png"},
        lambda root, outside: {"path": ""},
        lambda root, outside: {"path": None},
        lambda root, outside: str(outside),
        lambda root, outside: 42,
        lambda root, outside: ["a"],
    ],
    ids=["absolute", "dot-dot", "symlink", "missing", "nul", "empty", "none", "str", "int", "list"],
)
def test_anything_else_is_refused_with_one_sentence(upload_root, make):
    outside = _picture(upload_root.parent, "secret.png")
    (upload_root / "abc123" / "link.png").symlink_to(outside)
    value, refusal = check_picture(make(upload_root, outside), roots=[upload_root])
    assert value is None and refusal == RefusedImage("image_not_uploaded")
    with pytest.raises(ImageInputError) as raised:
        open_picture(refusal)
    assert "did not come from this page" in str(raised.value)
    assert str(upload_root) not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["https://example.org/a.png", "HTTP://x/y.jpg", "file:///etc/passwd", "//host/a.png"]
)
def test_a_url_is_refused_and_never_handed_on(upload_root, url):
    for payload in ({"path": url}, {"path": url, "meta": {"_type": "gradio.FileData"}}):
        value, refusal = check_picture(payload, roots=[upload_root])
        assert value is None and refusal == RefusedImage("image_url")


def test_data_urls_are_measured_by_their_decoded_size(upload_root):
    limit = 3000
    at_limit = "data:image/png;base64," + base64.b64encode(b"x" * limit).decode()
    over = "data:image/png;base64," + base64.b64encode(b"x" * (limit + 1)).decode()
    value, refusal = check_picture(
        {"url": at_limit, "path": "/etc/passwd"}, roots=[upload_root], max_bytes=limit
    )
    # Gradio decodes the URL itself; the path beside it is dropped, never read.
    assert refusal is None and value["url"] == at_limit and value["path"] is None
    value, refusal = check_picture({"url": over}, roots=[upload_root], max_bytes=limit)
    assert value is None and refusal == RefusedImage("image_too_large_file")


def test_an_oversized_file_in_the_upload_folder_is_refused(upload_root):
    path = _picture(upload_root / "abc123", size=5000)
    _value, refusal = check_picture({"path": str(path)}, roots=[upload_root], max_bytes=1000)
    assert refusal == RefusedImage("image_too_large_file")


def test_holds_free_a_picture_only_when_no_session_shows_it(upload_root):
    shared = _picture(upload_root / "abc123", "same.png")
    example = _picture(upload_root / "abc123", "example.png")
    holds = PictureHolds(protected=lambda: {str(example)})
    assert holds.show("a", str(shared)) is None
    assert holds.show("b", str(shared)) is None
    assert holds.release("a") == str(shared.resolve())
    assert not holds.deletable(str(shared))  # b still shows it
    assert holds.release("c") is None  # a session that showed nothing frees nothing
    assert holds.release("b") == str(shared.resolve())
    assert holds.deletable(str(shared))
    # The app's own example is never deletable, shown or not.
    holds.show("a", str(example))
    assert holds.show("a", str(shared)) == str(example.resolve())
    assert not holds.deletable(str(example))
