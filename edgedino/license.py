"""The notice that travels with DINOv3 weights and everything derived from them."""

DINOV3_NOTICE = (
    "Weights released by Meta as DINOv3 are under the DINOv3 License "
    "(https://github.com/facebookresearch/dinov3/blob/main/LICENSE.md); models exported or fine-tuned "
    "from them are derivatives and stay under its terms."
)
RANDOM_NOTICE = "random weights (no --weights given): the features carry no meaning, only the shapes and speed are real"
