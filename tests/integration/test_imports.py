"""How the packages depend: `import arp_jax` stays light, and the library never imports `data_prep`."""

import ast
import subprocess
import sys
from pathlib import Path

from paths import REPO
# Loaded only by the parts that need them (pipelines, models, training, tools), never by `import arp_jax`.
HEAVY = ("tensorflow_datasets", "tensorflow", "grain", "cv2", "av", "flax", "optax", "orbax", "matplotlib",
         "data_prep")


def test_import_arp_jax_and_pooling_load_no_heavy_package():
  code = ("import sys\nimport numpy as np\nimport arp_jax\n"
          "frames = np.random.default_rng(0).uniform(size=(6, 4, 4, 3)).astype(np.float32)\n"
          "for method in arp_jax.METHODS:\n  arp_jax.pool(frames, method)\n"
          "arp_jax.to_image(arp_jax.pool(frames, window=3, stride=2))\n"
          "arp_jax.normalize(frames * 255, 'torchvision')\n"
          f"print(sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY!r})))")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().splitlines()[-1] == "[]"


def _imported_modules(path: Path) -> set[str]:
  """The modules `path` imports (top level or inside functions): `import a.b` and `from a.b import c`."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.add(node.module)
  return names


def test_the_library_never_imports_data_prep():
  # data_prep builds on arp_jax, not the reverse; `arp_jax.cli` names data_prep's tools by module path (a
  # string, imported by importlib on use), which this does not count.
  offenders = {str(path.relative_to(REPO)): sorted(name for name in _imported_modules(path)
                                                    if name.split(".")[0] == "data_prep")
               for path in sorted((REPO / "arp_jax").rglob("*.py"))}
  assert {path: names for path, names in offenders.items() if names} == {}
