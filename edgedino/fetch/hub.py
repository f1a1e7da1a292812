"""Hugging Face Hub ids (`facebook/dinov3-vits16-pretrain-lvd1689m`, optionally `@revision`) as weights.

huggingface_hub does the work and keeps its own cache, so HF_HOME, HF_HUB_CACHE, HF_TOKEN (or `hf auth login`)
and HF_HUB_OFFLINE=1 behave as in every other Hub tool. Only the files a model folder needs are fetched. The
DINOv3 repos are gated: each failure becomes one line saying what to do.
"""

from __future__ import annotations

import re

from edgedino.errors import CheckpointError
from edgedino.runtime.formats import FORMATS, WEIGHTS_SUFFIXES

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?:@[\w./-]+)?$")
FILES = ["config.json", "*.safetensors", "model.safetensors.index.json"]
# names that end like these are files, not Hub ids (pytorch_model.bin, config.json, an artifact)
NOT_PATHS = (*WEIGHTS_SUFFIXES, ".bin", ".json", *(f.suffix for f in FORMATS.values()))


def is_hub_id(spec: str) -> bool:
    """`owner/name` or `owner/name@revision`, and not something that reads as a file name."""
    return bool(HUB_ID.match(spec)) and not spec.split("@")[0].endswith(NOT_PATHS)


def not_an_id(spec: str) -> str:
    """Why `spec`, which names no local file, is not a Hub id either ('' when it does not look like one)."""
    repo, at, revision = spec.partition("@")
    if spec.startswith((".", "/", "~")) or repo.count("/") != 1:
        return ""
    if at and not revision:
        return f" (as a Hub id: nothing after '@': give a revision, {repo}@main, or drop the '@')"
    return (" (as a Hub id owner/name[@revision]: only letters, digits, '-', '_' and '.' may appear, and the "
            "owner starts with a letter or digit)")


def page(repo: str) -> str:
    from huggingface_hub import constants

    return f"{constants.ENDPOINT}/{repo}"


def snapshot(spec: str) -> str:
    """The local folder of the repo's snapshot (config.json + safetensors), downloaded into the Hub cache if needed."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub import errors as hf

    repo, _, revision = spec.partition("@")
    at = f" at revision {revision}" if revision else ""
    try:
        return snapshot_download(repo, revision=revision or None, allow_patterns=FILES)
    except hf.GatedRepoError as e:
        code = e.response.status_code if e.response is not None else 401
        todo = ("your token has no access yet: accept the license on " if code == 403 else
                "accept the DINOv3 license on ") + f"{page(repo)}, then run `hf auth login` or set HF_TOKEN"
        raise CheckpointError(f"{repo} is a gated repo (HTTP {code}): {todo}") from None
    except hf.RevisionNotFoundError:
        raise CheckpointError(f"{repo} has no revision {revision!r}") from None
    except hf.RepositoryNotFoundError:
        raise CheckpointError(f"no Hugging Face Hub repo {repo!r} (nor a local file or folder of that name); "
                              "a private repo also needs `hf auth login` or HF_TOKEN") from None
    except hf.LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached"
        raise CheckpointError(f"no local file or folder {spec}, and as a Hub id: {why} and {repo}{at} is not in the "
                              f"Hub cache ({constants.HF_HUB_CACHE}); download it once with a network connection")\
            from None
    except hf.HfHubHTTPError as e:
        code = e.response.status_code if e.response is not None else "error"
        raise CheckpointError(f"the Hugging Face Hub answered HTTP {code} for {repo}{at}") from None
