"""The README's install and testing sections, run as written in a fresh site.

Every fenced block under "Install in your own site" (its "Testing your site" included)
is taken from README.md, in order, and played into a new ``startproject mysite``:

- a block whose first line is ``# <file>`` is that file; with ``(add to it ...)`` it is
  appended to the file, each ``...`` standing for what the setting held already
  (``[..., x]`` becomes ``[*NAME, x]``, ``{..., k: v}`` ``{**NAME, k: v}``);
- a ``sh`` block is commands: ``python manage.py ...`` and ``python -m pytest`` run in
  the site (``python`` is this interpreter; corsadmin importable from the checkout);
  ``pip install`` and ``python -m build`` are what the package test does
  (tests/test_package.py builds and installs the wheel): here their names are checked
  (the version, the extras, the test tools pinned in requirements-test.txt).

``python -m pytest`` must pass every test the snippets define, with only the plugins the
README's ``pip install`` names (this venv has more: they are not loaded). A block of
another kind, a Python block that names no file, or a command not listed here fails the
test: a README edit cannot leave a snippet unchecked.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Install in your own site"
# The pytest plugins the README's ``pip install`` may name, and the module pytest loads.
PLUGINS = {"pytest-django": "pytest_django.plugin", "pytest-asyncio": "pytest_asyncio.plugin"}


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # in README.md, for the failure message


def blocks(readme: str) -> list[Block]:
    """The fenced blocks of the install section (up to the next ``## `` heading)."""
    start = readme.index(f"\n{SECTION}\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end != -1 else None]
    first_line = readme[:start].count("\n") + 1
    found = []
    for match in re.finditer(r"(?ms)^```(\w*)\n(.*?)^```$", section):
        line = first_line + section[: match.start()].count("\n") + 1
        found.append(Block(match.group(1), match.group(2), line))
    return found


def with_what_is_there(code: str) -> str:
    """``NAME = [..., x]`` -> ``NAME = [*NAME, x]``: ``...`` is what the list held already."""
    tree = ast.parse(code)
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            [target] = node.targets
            assert isinstance(target, ast.Name), ast.unparse(node)
            node.value.elts = [
                ast.Starred(ast.Name(target.id, ast.Load()), ast.Load())
                if isinstance(e, ast.Constant) and e.value is Ellipsis
                else e
                for e in node.value.elts
            ]
    assert not any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(tree)), code
    return ast.unparse(tree)


def pinned_test_tools() -> set[str]:
    names = set()
    for line in (ROOT / "requirements-test.txt").read_text().splitlines():
        name = re.match(r"^([A-Za-z0-9_.-]+)==", line)
        if name:
            names.add(name.group(1).lower())
    return names


def check_pip(words: list[str], plugins: list[str]) -> None:
    """``pip install ...``: what the package test does with the wheel, or the test tools."""
    import corsadmin

    packages = words[2:]
    assert packages, words
    if packages == ["."]:
        assert (ROOT / "pyproject.toml").is_file()
        return
    wheel = re.fullmatch(r"dist/corsadmin-(.+)-py3-none-any\.whl\[([a-z,]+)\]", packages[0])
    if wheel:
        assert wheel.group(1) == corsadmin.__version__, f"the README installs {packages[0]}"
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert set(wheel.group(2).split(",")) <= set(extras), packages[0]
        return
    missing = {p.lower() for p in packages} - pinned_test_tools()
    assert not missing, f"the README installs {missing}, which requirements-test.txt does not pin"
    plugins += [PLUGINS[p] for p in packages if p in PLUGINS]


def test_the_install_and_testing_snippets_run_in_a_fresh_site(tmp_path):
    readme = (ROOT / "README.md").read_text()
    found = blocks(readme)
    assert len(found) >= 6, "the install section lost its snippets"
    site = tmp_path / "site"
    site.mkdir()
    # corsadmin importable, and nothing else of the checkout (its tests/ and project/).
    path = tmp_path / "path"
    path.mkdir()
    (path / "corsadmin").symlink_to(ROOT / "corsadmin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "CORSADMIN"))}
    env.update(PYTHONPATH=str(path), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)

    def run(args: list[str], where: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, cwd=site, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (
            f"{where}: {shlex.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
        return done

    run([sys.executable, "-m", "django", "startproject", "mysite", "."], "startproject")
    plugins: list[str] = []
    tests = 0
    ran_pytest = False
    for block in found:
        where = f"README.md line {block.line}"
        if block.language in ("python", "ini"):
            first, _, body = block.text.partition("\n")
            named = re.fullmatch(r"# (\S+)( \(add to it\b.*\))?", first)
            assert named, f"{where}: a {block.language} block starts with '# <file>'"
            file = site / named.group(1)
            if named.group(2):
                assert file.is_file(), f"{where}: adds to {file.name}, which the site does not have"
                file.write_text(file.read_text() + "\n" + with_what_is_there(body) + "\n")
            else:
                assert not file.exists(), f"{where}: {named.group(1)} exists already"
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(block.text)
            if block.language == "python":
                compile(file.read_text(), str(file), "exec")
            tests += len(re.findall(r"(?m)^(?:async )?def test_", block.text))
        elif block.language == "sh":
            for line in block.text.splitlines():
                command = line.partition("  #")[0].strip()
                if not command:
                    continue
                words = shlex.split(command)
                if words[:2] == ["pip", "install"]:
                    check_pip(words, plugins)
                elif words == ["python", "-m", "build"]:
                    assert "pip install build" in block.text, f"{where}: python -m build needs the build tool"
                elif words[:2] == ["python", "manage.py"]:
                    run([sys.executable, *words[1:]], where)
                elif words == ["python", "-m", "pytest"]:
                    env["PYTEST_PLUGINS"] = ",".join(plugins)
                    done = run([sys.executable, "-m", "pytest"], where)
                    assert re.search(rf"\b{tests} passed\b", done.stdout), done.stdout
                    assert " warning" not in done.stdout.splitlines()[-1], done.stdout
                    ran_pytest = True
                else:
                    raise AssertionError(f"{where}: {command!r} is a command this test does not know")
        else:
            raise AssertionError(f"{where}: a ```{block.language} block this test does not know")
    assert ran_pytest and tests >= 3, (ran_pytest, tests)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_contents_link_every_section_in_the_order_of_the_readme():
    readme = (ROOT / "README.md").read_text()
    text = re.sub(r"(?ms)^```.*?^```$", "", readme)  # a "# comment" in a code block is no heading
    headings = re.findall(r"^(#{2,3}) (.+)$", text, flags=re.M)
    anchors = {github_anchor(title): title for _level, title in headings}
    contents = text[text.index("\n## Contents\n") :].split("\n## ", 2)[1]
    links = re.findall(r"\]\(#([^)]+)\)", contents)
    assert [link for link in links if link not in anchors] == []
    sections = [github_anchor(title) for level, title in headings if level == "##" and title != "Contents"]
    assert [s for s in sections if s not in links] == []
    first_links = list(dict.fromkeys(link for link in links if link in sections))
    assert first_links == [s for s in sections if s in first_links]  # the map follows the README
