"""Build hook: the wheel carries the data the notebooks and the CLI need offline.

The repository's data/ stays the one source. Building a wheel (or installing without -e) copies the
shipped files from there into the built package as vit_tutorial/package_data/, where the installed
package finds them with importlib.resources (vit_tutorial/locations.py). An editable install, and a
plain clone, read data/ in place, so nothing is copied for them. MANIFEST.in puts the same files
into the sdist, so a wheel built from the sdist carries them too. Everything else is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# The same list as vit_tutorial.locations.SHIPPED_FILES (tests/test_package.py checks the built wheel).
SHIPPED_FILES = ("digits.npz", "digits_vit.pt", "photos/*.jpg")


class build_py_with_data(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        source = Path(__file__).resolve().parent / "data"
        target = Path(self.build_lib) / "vit_tutorial" / "package_data"
        for pattern in SHIPPED_FILES:
            found = sorted(source.glob(pattern))
            if not found:
                raise SystemExit(f"setup.py: no data/{pattern}: the wheel would lack it (restore data/ first)")
            for path in found:
                dest = target / path.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)


setup(cmdclass={"build_py": build_py_with_data})
