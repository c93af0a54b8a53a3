"""The package graph runs one way, as the README's layout section draws it: `ssmtl_jax` (the
library: models, tasks, training, evaluation) imports `data_prep` (preprocessing, the record
format), never the reverse. Imports are read from the source with `ast`, so the test also sees
imports inside functions."""

import ast
import pathlib

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
