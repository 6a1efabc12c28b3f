"""The first ``make run``: pip's hidden install says what it is doing (issue 16 item 2).

scripts/pip_install.py is run here on stand-in "pip" commands that print what pip -v prints
(the lines are taken from a real first install of Haven, trimmed), so the messages a
newcomer reads are checked without a six-minute compile.
"""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

from scripts.pip_install import LONG_BUILD, BuildProgress, run

# From a real `pip install -v -e .` in a fresh venv with an empty pip cache (trimmed).
FIRST_INSTALL = """\
Using pip 25.3 from /tmp/desk-scratch/.venv/lib/python3.11/site-packages/pip (python 3.11)
Obtaining file:///tmp/desk-scratch
  Installing build dependencies: started
  Collecting hatchling>=1.25
  Installing collected packages: trove-classifiers, tomlkit, pluggy, pathspec, packaging, hatchling
  Successfully installed hatchling-1.33.0 packaging-26.3 pathspec-1.1.1 pluggy-1.7.0
  Installing build dependencies: finished with status 'done'
Collecting llama-cpp-python<0.4,>=0.3.16 (from haven==0.1.0)
  Installing build dependencies: started
  Collecting scikit-build-core>=0.9.2 (from scikit-build-core[pyproject]>=0.9.2)
  Installing collected packages: pathspec, packaging, scikit-build-core
  Successfully installed packaging-26.3 pathspec-1.1.1 scikit-build-core-1.1.2
  Installing build dependencies: finished with status 'done'
Collecting textual<9,>=1.0 (from haven==0.1.0)
Building wheels for collected packages: haven, llama-cpp-python
  Building editable for haven (pyproject.toml): started
  Building editable for haven (pyproject.toml): finished with status 'done'
  Created wheel for haven: filename=haven-0.1.0-py3-none-any.whl size=71420
  Building wheel for llama-cpp-python (pyproject.toml): started
  *** scikit-build-core 1.1.2 using CMake 3.31.6 (wheel)
  -- The C compiler identification is GNU 12.2.0
  [1/193] /usr/bin/g++ -DGGML_BUILD -c ggml-backend.cpp
  [2/193] /usr/bin/gcc -DGGML_BUILD -c ggml.c
  [97/193] /usr/bin/g++ -DGGML_BUILD -c llama-model.cpp
  [193/193] Linking CXX shared library bin/libllama.so
  [0/1] Install the project...
  Building wheel for llama-cpp-python (pyproject.toml): finished with status 'done'
  Created wheel for llama-cpp-python: filename=llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl
Successfully built haven llama-cpp-python
Installing collected packages: typing-extensions, textual, llama-cpp-python, haven
Successfully installed haven-0.1.0 llama-cpp-python-0.3.36 textual-8.2.8
"""

# The same install when pip already has llama-cpp-python's wheel: no compile, no long wait.
FROM_CACHE = """\
Obtaining file:///work/haven
Collecting llama-cpp-python<0.4,>=0.3.16 (from haven==0.1.0)
  Using cached llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl
Building wheels for collected packages: haven
  Building editable for haven (pyproject.toml): started
  Created wheel for haven: filename=haven-0.1.0-py3-none-any.whl size=71420
Installing collected packages: llama-cpp-python, haven
Successfully installed haven-0.1.0 llama-cpp-python-0.3.36
"""

FAILED_COMPILE = """\
Collecting llama-cpp-python<0.4,>=0.3.16 (from haven==0.1.0)
  Building wheel for llama-cpp-python (pyproject.toml): started
  -- The C compiler identification is unknown
  CMake Error at CMakeLists.txt:3 (project):
    No CMAKE_CXX_COMPILER could be found.
  error: subprocess-exited-with-error
"""


def fake_pip(tmp_path: Path, transcript: str, code: int = 0) -> list[str]:
    """A command that prints ``transcript`` as pip -v would, then exits with ``code``."""
    source = tmp_path / "transcript.txt"
    source.write_text(transcript)
    script = tmp_path / "fake_pip.py"
    script.write_text(textwrap.dedent(f"""\
        import sys
        for line in open({str(source)!r}):
            sys.stdout.write(line)
            sys.stdout.flush()
        sys.exit({code})
    """))
    return [sys.executable, str(script)]


def install(tmp_path: Path, transcript: str, code: int = 0, tty: bool = False):
    out = io.StringIO()
    log = tmp_path / "venv" / "install.log"
    result = run(fake_pip(tmp_path, transcript, code), log, out, tty)
    return result, out.getvalue(), log


def test_a_first_install_says_it_is_compiling_how_long_it_takes_and_how_far_it_is(tmp_path):
    code, said, log = install(tmp_path, FIRST_INSTALL)
    assert code == 0
    lines = said.splitlines()
    assert lines[0].startswith("Installing Haven and the packages it uses")
    assert str(log) in lines[0]  # where the full output is
    assert said.count(LONG_BUILD) == 1 and "about 6 minutes" in LONG_BUILD
    progress = [line for line in lines if line.startswith("  compiling llama.cpp")]
    assert progress, said  # not a terminal: a line as the compile starts, then one a minute
    assert lines[-1].startswith("Installed (") and lines[-1].endswith(").")
    assert log.read_text() == FIRST_INSTALL  # nothing of pip's output is lost


def test_the_compile_percentage_only_goes_up_and_reaches_the_end():
    progress = BuildProgress()
    seen = []
    for line in FIRST_INSTALL.splitlines():
        progress.feed(line)
        if progress.compiling and progress.percent is not None:
            seen.append(progress.percent)
    assert seen == sorted(seen) and seen[0] <= 1 and seen[-1] == 100
    assert 50 in seen  # [97/193]
    assert progress.compiled_llama and progress.phase == "done"


def test_on_a_terminal_one_line_changes_in_place(tmp_path):
    code, said, _ = install(tmp_path, FIRST_INSTALL, tty=True)
    assert code == 0
    assert "\r  compiling llama.cpp" in said
    assert said.splitlines()[-1].endswith(").") and "Installed (" in said


def test_an_install_from_pips_cache_never_claims_a_long_wait(tmp_path):
    code, said, _ = install(tmp_path, FROM_CACHE)
    assert code == 0
    assert LONG_BUILD not in said and "compiling" not in said
    assert said.splitlines()[-1].startswith("Installed (")


def test_a_failed_compile_shows_the_logs_end_and_what_is_missing(tmp_path):
    code, said, log = install(tmp_path, FAILED_COMPILE, code=1)
    assert code == 1
    assert f"The full log is {log}" in said
    assert "No CMAKE_CXX_COMPILER could be found." in said  # the log's last lines, shown
    assert "build-essential" in said


def test_the_makefile_installs_through_it():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "scripts/pip_install.py" in makefile
    assert "pip install --quiet -e" not in makefile  # the silent six minutes are gone


def test_the_build_tools_pip_installs_on_the_way_do_not_read_as_done():
    progress = BuildProgress()
    phases = []
    for line in FIRST_INSTALL.splitlines():
        progress.feed(line)
        phases.append(progress.phase)
    last_done = len(phases) - 1
    assert phases.index("done") == last_done  # only pip's own last line
    assert "installing" not in phases[:phases.index("compiling llama.cpp")]


def test_package_names_are_short():
    from scripts.pip_install import _short

    assert _short("textual<9,>=1.0") == "textual"
    assert _short("/opt/files/packaging-26.3-py3-none-any.whl") == "packaging"
    assert _short("file:///tmp/haven") == "haven"
