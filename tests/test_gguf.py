"""The GGUF check that guards import and download: good, truncated, corrupt, not GGUF."""

import os

import pytest

from app.modelhub.gguf import GGUFError, inspect_gguf
from tests.gguf_factory import make_gguf


def test_a_valid_file_is_read(tmp_path):
    path = tmp_path / "ok.gguf"
    path.write_bytes(make_gguf(template="{{ messages }}"))
    info = inspect_gguf(path)
    assert info.architecture == "llama"
    assert info.tensor_count == 2
    assert info.chat_template == "{{ messages }}"
    assert info.required_size <= path.stat().st_size


def test_the_real_test_model_is_complete(gemma_gguf):
    info = inspect_gguf(gemma_gguf)
    assert info.architecture == "gemma3"
    assert info.required_size == gemma_gguf.stat().st_size
    assert info.chat_template is None  # the base model has none: Haven must not guess


def test_truncated_data_is_refused_with_how_much_is_there(tmp_path):
    data = make_gguf()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[:-40])
    with pytest.raises(GGUFError, match=r"incomplete: it holds .* of the .* bytes"):
        inspect_gguf(path)


def test_truncated_header_is_refused(tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(make_gguf()[:60])
    with pytest.raises(GGUFError, match="truncated"):
        inspect_gguf(path)


@pytest.mark.parametrize("payload", [b"", b"hello world, not a model", os.urandom(4096)])
def test_random_and_empty_files_are_not_gguf(tmp_path, payload):
    path = tmp_path / "x.gguf"
    path.write_bytes(payload)
    with pytest.raises(GGUFError, match="not a GGUF model file"):
        inspect_gguf(path)


def test_unsupported_version_and_corrupt_counts(tmp_path):
    path = tmp_path / "v1.gguf"
    path.write_bytes(make_gguf(version=1))
    with pytest.raises(GGUFError, match="version 1"):
        inspect_gguf(path)
    data = bytearray(make_gguf())
    data[8:16] = (2**40).to_bytes(8, "little")  # absurd tensor count
    path.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match="implausible|corrupt"):
        inspect_gguf(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(GGUFError, match="no such file"):
        inspect_gguf(tmp_path / "nope.gguf")
    with pytest.raises(GGUFError, match="folder"):
        inspect_gguf(tmp_path)
