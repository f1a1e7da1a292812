"""Training data: sources (folders, videos, lists), decoding with corrupt-file skipping, a resumable mixed stream."""

from edgedino.data.dataset import Draw, ImageDataset, Skipped, collate_skip, decode_image
from edgedino.data.loader import BatchStream, DataConfig, SkipCounter, make_loader
from edgedino.data.sampler import MixedSampler
from edgedino.data.sources import Item, Source, index, index_source, parse_source, parse_sources

__all__ = ["BatchStream", "DataConfig", "Draw", "ImageDataset", "Item", "MixedSampler", "SkipCounter", "Skipped",
           "Source", "collate_skip", "decode_image", "index", "index_source", "make_loader", "parse_source",
           "parse_sources"]
