# `make test` and `make demo` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint install xtools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	$(BIN)/pip check
	touch $(STAMP)

install: $(STAMP) xtools

# The app tests open real windows on a private X server (Xvfb), screenshot it (xwd) and press keys (xdotool).
XTOOLS := xvfb x11-apps xdotool
xtools:
	@command -v Xvfb >/dev/null && command -v xwd >/dev/null && command -v xdotool >/dev/null \
	  || { command -v apt-get >/dev/null && { apt-get install -y -qq $(XTOOLS) >/dev/null 2>&1 \
	       || { apt-get update -qq && apt-get install -y -qq $(XTOOLS) >/dev/null; }; }; } \
	  || echo "note: Xvfb, xwd or xdotool is missing and apt-get could not install them: window tests will skip"

lint: $(STAMP)
	$(BIN)/ruff check edgedino tests apps

test: lint xtools
	$(BIN)/pytest -q

demo: $(STAMP)
	@echo "== edgedino info: the default ViT-S/16 (random weights unless you pass --weights)"
	$(BIN)/edgedino info --model vits16
	@echo "== edgedino features: PCA of patch features on a photo shipped in assets/"
	$(BIN)/edgedino features edgedino/assets/butterfly.jpg --out demo_out/pca.png
	@echo "== edgedino export: every target this machine converts, fp32 and int8, each verified against PyTorch"
	$(BIN)/edgedino export --target all --model vits16 --precision fp32,int8 --out demo_out/exports
	@echo "Weights are random unless --weights is given: pass an official DINOv3 .pth or HF folder for real features."

clean:
	rm -rf $(VENV) demo_out
