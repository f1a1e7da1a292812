"""`edgedino models`: every preset, its size and cost, and where its official weights come from."""

from __future__ import annotations

from edgedino.cli.common import add_command


def register(sub) -> None:
    p = add_command(
        sub, "models", help="list the presets, their size and cost, and where official weights come from",
        description="Every preset with its parameters and GMACs at 224x224, and the official DINOv3 weights that "
                    "fit it: the file name in Meta's download links (request them on Meta's DINOv3 downloads "
                    "page) and the gated Hugging Face Hub repo with the same weights. Any of them goes to "
                    "--weights: the file, its download link, or the Hub id (after accepting the license on the "
                    "repo's page and logging in with `hf auth login` or HF_TOKEN).",
        examples="""
            edgedino models
            edgedino info --weights facebook/dinov3-convnext-tiny-pretrain-lvd1689m
            edgedino export --target onnx --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth
        """,
    )
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from edgedino.license import DINOV3_NOTICE
    from edgedino.models import create_model, list_models
    from edgedino.models.flops import count_macs
    from edgedino.models.releases import REQUEST_PAGE, releases_of

    rows = []
    for name in list_models():
        with torch.device("meta"):
            net = create_model(name)
        params = sum(p.numel() for p in net.parameters()) / 1e6
        macs = count_macs(net, (224, 224)) / 1e9
        found = releases_of(name) or [None]
        for i, r in enumerate(found):
            first = (name, f"{params:.1f} M", f"{macs:.1f}") if i == 0 else ("", "", "")
            rows.append((*first, r.data if r else "-", r.file if r else "-", (r.hub or "-") if r else "-"))
    header = ("preset", "params", "GMACs@224", "data", "official file (Meta's download links)", "Hugging Face Hub id")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\nfiles: {REQUEST_PAGE} (links by email); Hub repos are gated: accept the license on the repo page.")
    print(f"license: {DINOV3_NOTICE}")
    return 0
