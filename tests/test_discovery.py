from __future__ import annotations

import os
from pathlib import Path

import pytest

from neardup import discovery
from neardup.discovery import FoundFile, PathError, check_roots, is_candidate, iter_files


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def found_paths(roots: list[Path | str], errors: list[tuple[str, str]] | None = None) -> list[str]:
    return [found.path for found in iter_files([str(root) for root in roots], errors)]


def test_files_in_nested_directories_are_found_depth_first_in_name_order(tmp_path: Path) -> None:
    for relative in ["b.jpg", "a/z.png", "a/deeper/still/c.gif", "a/m.webp", "c/d.JPG"]:
        touch(tmp_path / relative)
    # Each directory's own files first, then its subdirectories by name.
    expected = ["b.jpg", "a/m.webp", "a/z.png", "a/deeper/still/c.gif", "c/d.JPG"]
    assert found_paths([tmp_path]) == [str(tmp_path / relative) for relative in expected]


def test_found_files_carry_size_and_mtime_from_stat(tmp_path: Path) -> None:
    photo = touch(tmp_path / "photo.jpg", b"12345")
    os.utime(photo, (1_000_000.0, 1_234_567.5))
    assert list(iter_files([str(tmp_path)])) == [FoundFile(str(photo), 5, 1_234_567.5)]


def test_a_symlink_loop_ends_and_yields_each_file_once(tmp_path: Path) -> None:
    touch(tmp_path / "top.jpg")
    touch(tmp_path / "sub" / "inner.jpg")
    (tmp_path / "sub" / "up").symlink_to("..")
    (tmp_path / "sub" / "self").symlink_to(".")
    paths = found_paths([tmp_path])
    assert paths == [str(tmp_path / "top.jpg"), str(tmp_path / "sub" / "inner.jpg")]


def test_a_symlinked_directory_is_followed_once(tmp_path: Path) -> None:
    touch(tmp_path / "real" / "photo.jpg")
    (tmp_path / "alias").symlink_to("real")
    # "alias" sorts first, so the directory is walked under that name only.
    assert found_paths([tmp_path]) == [str(tmp_path / "alias" / "photo.jpg")]


def test_a_symlink_to_a_directory_outside_the_root_is_followed(tmp_path: Path) -> None:
    touch(tmp_path / "elsewhere" / "photo.jpg")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    assert found_paths([tmp_path / "root"]) == [str(tmp_path / "root" / "link" / "photo.jpg")]


def test_overlapping_and_repeated_roots_yield_each_path_once(tmp_path: Path) -> None:
    photo = touch(tmp_path / "album" / "photo.jpg")
    roots = [photo, tmp_path / "album", tmp_path, tmp_path / "album" / ".." / "album"]
    assert found_paths(roots) == [str(photo)]


def test_a_root_that_is_a_file_is_yielded_even_without_an_image_extension(tmp_path: Path) -> None:
    named = touch(tmp_path / "scan.dat")
    assert found_paths([named]) == [str(named)]
    assert found_paths([tmp_path]) == []


def test_non_image_files_are_ignored(tmp_path: Path) -> None:
    for name in ["README.md", "data.csv", "logo.svg", "notes.txt", "model.pkl", "noext"]:
        touch(tmp_path / name)
    keep = [touch(tmp_path / name) for name in ["a.HEIC", "b.jpeg", "c.Png", "d.tiff"]]
    assert found_paths([tmp_path]) == [str(path) for path in keep]


IMAGE_NAMES = ["x.jpg", "X.JPG", "x.jpeg", "x.png", "x.webp", "x.gif", "x.tif", "x.bmp"]
PLUGIN_NAMES = ["x.heic", "x.HEIF", "x.avif", "x.jxl", "x.dng.jpg", "with space.jpg"]


@pytest.mark.parametrize("name", IMAGE_NAMES + PLUGIN_NAMES)
def test_image_names_are_candidates(name: str) -> None:
    assert is_candidate(name)


OTHER_NAMES = ["x.svg", "x.txt", "x.csv", "x.md", "x.pkl", "x", "jpg", "x.jpg.txt", "x.JPG~"]


@pytest.mark.parametrize("name", OTHER_NAMES)
def test_other_names_are_not_candidates(name: str) -> None:
    assert not is_candidate(name)


def test_the_extensions_answered_without_pillows_registry_are_all_in_it() -> None:
    from neardup.discovery import COMMON_EXTENSIONS, _image_extensions

    assert COMMON_EXTENSIONS <= _image_extensions()


def test_a_name_with_spaces_quotes_and_non_utf8_bytes_round_trips(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9 'single' \"double\" photo.jpg"
    os.close(os.open(raw, os.O_CREAT | os.O_WRONLY, 0o644))
    (found,) = iter_files([str(tmp_path)])
    assert os.fsencode(found.path) == raw
    assert os.path.isfile(found.path)


def test_a_broken_symlink_is_reported_not_yielded(tmp_path: Path) -> None:
    touch(tmp_path / "ok.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    (tmp_path / "gone-dir").symlink_to(tmp_path / "missing-dir")
    errors: list[tuple[str, str]] = []
    assert found_paths([tmp_path], errors) == [str(tmp_path / "ok.jpg")]
    assert errors == [
        (str(tmp_path / "gone-dir"), "broken symbolic link"),
        (str(tmp_path / "gone.jpg"), "broken symbolic link"),
    ]


def test_a_symlink_to_itself_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    errors: list[tuple[str, str]] = []
    assert found_paths([tmp_path], errors) == []
    assert [path for path, _ in errors] == [str(tmp_path / "loop.jpg")]
    assert "symbolic link" in errors[0][1]


def test_a_file_reached_by_a_symlink_and_a_hard_link_is_found_once(tmp_path: Path) -> None:
    photo = touch(tmp_path / "b-photo.jpg", b"123")
    (tmp_path / "a-link.jpg").symlink_to(photo)
    os.link(photo, tmp_path / "c-hard.jpg")
    # Listed twice, a photo would be grouped with itself and one name offered for deletion.
    mtime = photo.stat().st_mtime
    assert list(iter_files([str(tmp_path)])) == [FoundFile(str(tmp_path / "a-link.jpg"), 3, mtime)]


def test_a_root_named_twice_yields_its_files_once(tmp_path: Path) -> None:
    touch(tmp_path / "a.jpg", b"1")
    assert len(list(iter_files([str(tmp_path), str(tmp_path)]))) == 1


def test_an_unreadable_directory_is_reported_and_its_siblings_still_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: chmod 000 does not stop root, and these tests run as root.
    touch(tmp_path / "locked" / "secret.jpg")
    touch(tmp_path / "open" / "photo.jpg")
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if path == str(tmp_path / "locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(discovery.os, "scandir", scandir)
    errors: list[tuple[str, str]] = []
    assert found_paths([tmp_path], errors) == [str(tmp_path / "open" / "photo.jpg")]
    assert errors == [(str(tmp_path / "locked"), "permission denied")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can list any directory")
def test_a_really_unreadable_directory_is_reported(tmp_path: Path) -> None:
    touch(tmp_path / "locked" / "secret.jpg")
    (tmp_path / "locked").chmod(0)
    errors: list[tuple[str, str]] = []
    try:
        assert found_paths([tmp_path], errors) == []
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert errors == [(str(tmp_path / "locked"), "permission denied")]


def test_a_missing_root_is_reported_by_iter_files_instead_of_raising(tmp_path: Path) -> None:
    errors: list[tuple[str, str]] = []
    assert found_paths([tmp_path / "nope"], errors) == []
    assert errors == [(str(tmp_path / "nope"), "no such file or directory")]


def test_check_roots_names_a_missing_root_in_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "x" / "y")
    with pytest.raises(PathError) as caught:
        check_roots([str(tmp_path), missing])
    assert str(caught.value) == f"{missing}: no such file or directory"


def test_check_roots_refuses_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(PathError, match="pipe: not a regular file or directory$"):
        check_roots([str(tmp_path / "pipe")])


def test_check_roots_refuses_a_directory_it_cannot_enter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.access is faked because root passes every permission check.
    monkeypatch.setattr(discovery.os, "access", lambda path, mode: not mode & os.X_OK)
    with pytest.raises(PathError) as caught:
        check_roots([str(tmp_path)])
    assert str(caught.value) == f"{tmp_path}: permission denied"


def test_check_roots_makes_roots_absolute_and_normal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    photo = touch(tmp_path / "b" / "photo.jpg")
    monkeypatch.chdir(tmp_path / "a")
    assert check_roots(["../b/", "../b/./photo.jpg", "."]) == [
        str(tmp_path / "b"),
        str(photo),
        str(tmp_path / "a"),
    ]


def test_path_error_is_a_value_error() -> None:
    assert issubclass(PathError, ValueError)
