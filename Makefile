# `make test` and `make demo` work on a fresh machine: they create .venv and install what they need, at the
# versions the tests ran with (constraints.txt; pyproject.toml itself holds compatible ranges).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint install xtools clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[all,dev]'
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

# The whole suite in one pytest process. (It once died there of SIGSEGV: each ov.Core's CPU plugin installs an
# alternate signal stack and restores the one it found when destroyed, so runtimes freed out of order left it
# pointing at freed memory; edgedino.runtime.openvino keeps one Core for the process. See tests/test_runtime.py.)
test: lint xtools
	$(BIN)/pytest -q

demo: $(STAMP)
	@echo "== without --weights: the shipped DEMO model (edgedino/assets/demo), a ViT/8 trained on a few hundred images, NOT DINOv3"
	$(BIN)/edgedino info
	@echo "== edgedino features: PCA of the demo model's patch features on a photo shipped in assets/"
	$(BIN)/edgedino features edgedino/assets/butterfly.jpg --save demo_out/pca.png
	@echo "== edgedino export: every target this machine converts, fp32 and int8, each verified against PyTorch"
	$(BIN)/edgedino export --target all --precision fp32,int8 --out demo_out/exports
	@echo "== edgedino-track: a generated clip (python -m edgedino.track.synth), tracked headless by the int8 OpenVINO artifact"
	$(BIN)/python -m edgedino.track.synth demo_out/synth --count 1 --frames 48 --objects 2 --size 480x640
	$(BIN)/edgedino-track --model demo_out/exports/demo-vit8_224_int8.xml --source demo_out/synth/JPEGImages/480p/synth00 \
		--mask demo_out/synth/Annotations/480p/synth00/00000.png --headless --save demo_out/track.mp4 --json demo_out/tracks.jsonl
	@echo "This was the demo model (trained on a few hundred images, not DINOv3): pass --weights with an official DINOv3 .pth or HF folder for real features."

clean:
	rm -rf $(VENV) demo_out
