# Two commands do everything (see README): `make train` and `make test`.
# Both create, or reuse, a project-local virtual environment in .venv, and say what they do.
# TORCH=auto|cpu|cuda|default chooses the PyTorch build (scripts/install_torch.py): auto is the
# CPU-only build on Linux without an NVIDIA GPU (a fraction of the CUDA build's size), else pip's default.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= auto
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(wildcard notebooks/[0-9][0-9]_*.ipynb)

.PHONY: setup train test unit notebooks execute-notebooks check-notebooks bench site site-check colab-links clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install_torch.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is needed, this is " + sys.version.split()[0]'
	@if test -x $(PY); then echo "==> reusing $(VENV)"; \
	 else echo "==> creating $(VENV) (a virtual environment for this project only) with $$($(PYTHON) --version)"; \
	      $(PYTHON) -m venv $(VENV) || exit 1; fi
	@$(PY) scripts/install_torch.py $(TORCH)
	@echo "==> installing vit_tutorial (editable) and its other dependencies: pip install -e '.[test]' ..."
	@$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	@echo "==> set-up done: $(VENV) takes $$(du -sh $(VENV) | cut -f1) on disk"
	@touch $(STAMP)

## The main job: train the default small ViT on the embedded digits (no network needed).
train: setup
	$(PY) -m vit_tutorial train $(ARGS)

## The whole test suite: unit tests, then every notebook through nbval in the fast smoke setting.
test: setup
	VIT_TUTORIAL_SMOKE=1 MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider $(ARGS)

unit: setup
	$(PY) -m pytest tests $(ARGS)

notebooks: setup
	VIT_TUTORIAL_SMOKE=1 $(PY) -m pytest notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

## Re-execute the notebooks in full (not smoke) and save them with their outputs, for committing.
execute-notebooks: setup
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 $$nb || exit 1; \
	done

check-notebooks:
	$(PYTHON) ../shared/tools/check_notebooks.py notebooks

## Training throughput against timm and vit-pytorch (installs the [bench] extra).
bench: setup
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test,bench]"
	$(PY) benchmarks/throughput.py $(ARGS)

## The series as a website, from the committed notebooks (nothing is executed): _build/site/index.html.
## Sphinx with MyST-NB and the book theme (the [site] extra), configured in docs/conf.py.
SITE_STAMP := $(VENV)/.site-installed
$(SITE_STAMP): $(STAMP) pyproject.toml
	@echo "==> installing the website's tools: pip install -e '.[test,site]' ..."
	@$(PY) -m pip install --disable-pip-version-check -q -e ".[test,site]"
	@touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(PY) -m sphinx -q -b html -c docs . _build/site
	@echo "==> the website: _build/site/index.html"

## The website built afresh with warnings as errors, then every link inside it checked (offline).
site-check: $(SITE_STAMP)
	rm -rf _build/site
	$(PY) -m sphinx -q -E -W --keep-going -b html -c docs . _build/site
	$(PY) scripts/check_site_links.py _build/site

## Point the Colab badges and set-up cells at a GitHub repository (default: the 'origin' remote).
colab-links: setup
	$(PY) scripts/colab_links.py $(if $(REPO),--repo $(REPO)) $(if $(BRANCH),--branch $(BRANCH))

clean:
	rm -rf $(VENV) runs .pytest_cache _build docs/api
