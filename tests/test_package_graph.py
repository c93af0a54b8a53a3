"""The package graph runs one way, as README.md and ARCHITECTURE.md draw it: `ssmtl_jax` (the
library: models, tasks, training, evaluation) imports `data_prep` (preprocessing, the record
format), never the reverse, and evaluation and scoring never reach the training loop. Imports are
read from the source with `ast`, so the test also sees imports inside functions. Both documents'
module lists match the tree."""

import ast
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def imports_of(path: pathlib.Path) -> set[str]:
  """Every module name `path` imports (`from a.b import c` counts as `a.b` and `a.b.c`)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def package_modules(package: str) -> dict[str, pathlib.Path]:
  """Dotted module name -> file, for every module of a package."""
  return {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
          for p in sorted((REPO / package).rglob("*.py"))}


def test_imports_of_reads_every_kind_of_import(tmp_path):
  source = tmp_path / "m.py"
  source.write_text("import os\nfrom a.b import c\ndef f():\n  import ssmtl_jax.train\n"
                    "from . import relative\n")
  assert imports_of(source) == {"os", "a.b", "a.b.c", "ssmtl_jax.train"}


@pytest.mark.parametrize("module,path", sorted(package_modules("data_prep").items()))
def test_data_prep_does_not_import_the_library(module, path):
  bad = sorted(n for n in imports_of(path) if n == "ssmtl_jax" or n.startswith("ssmtl_jax."))
  assert not bad, f"{module} imports {bad}: data_prep sits below ssmtl_jax"


def import_closure(module: str, modules: dict[str, pathlib.Path]) -> set[str]:
  """Every project module `module` imports, directly or through other project modules."""
  seen, todo = set(), [module]
  while todo:
    current = todo.pop()
    for name in imports_of(modules[current]):
      if name in modules and name not in seen:
        seen.add(name)
        todo.append(name)
  return seen


@pytest.mark.parametrize("module", ["ssmtl_jax.eval.evaluate", "ssmtl_jax.eval.score_video",
                                    "ssmtl_jax.eval.streaming", "ssmtl_jax.model_setup"])
def test_evaluation_and_scoring_do_not_reach_the_training_loop(module):
  modules = {**package_modules("ssmtl_jax"), **package_modules("data_prep")}
  assert "ssmtl_jax.train.loop" not in import_closure(module, modules)


def _architecture_sections() -> dict[str, set[str]]:
  """Folder -> the module files ARCHITECTURE.md names under its `### \\`folder/\\`` heading."""
  sections, folder = {}, None
  for line in (REPO / "ARCHITECTURE.md").read_text().splitlines():
    if line.startswith("### `") and line.rstrip().endswith("/`"):
      folder = line.strip()[5:-1].rstrip("/")
      sections[folder] = set()
    elif line.startswith("## "):
      folder = None
    elif folder is not None:
      sections[folder].update(re.findall(r"`([\w/]+\.py)`", line))
  return sections


def test_architecture_names_every_module_once_in_its_folder():
  sections = _architecture_sections()
  folders = {"ssmtl_jax", "data_prep"} | {f"ssmtl_jax/{p.name}"
                                          for p in (REPO / "ssmtl_jax").iterdir()
                                          if p.is_dir() and (p / "__init__.py").exists()}
  assert set(sections) == folders
  for folder, named in sections.items():
    on_disk = {p.name for p in (REPO / folder).glob("*.py")} - {"__init__.py"}
    named = named - {"__init__.py"}  # a package's __init__ may be described too (the registry)
    assert named == on_disk, (f"{folder}: ARCHITECTURE.md names {sorted(named - on_disk)}, "
                              f"which are not on disk, and omits {sorted(on_disk - named)}")


def test_readme_layout_lists_files_that_exist():
  readme = (REPO / "README.md").read_text()
  block = readme.split("### Layout", 1)[1].split("```", 2)[1]
  folder = None
  for line in block.splitlines():
    tokens = line.split()
    if not tokens:
      continue
    if tokens[0].endswith("/"):
      folder = (tokens[0] if not line.startswith(" ") else f"ssmtl_jax/{tokens[0]}").rstrip("/")
      tokens = tokens[1:]
    for name in tokens:
      if name.endswith(".py") and "{" not in name:
        assert (REPO / folder / name).exists(), f"README layout: {folder}/{name} does not exist"
