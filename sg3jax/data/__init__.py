"""Training data: image datasets, the demo dataset, grain batches."""

from sg3jax.data.demo import demo_images
from sg3jax.data.image_dataset import ImageDataset
from sg3jax.data.image_dataset import open_dataset
from sg3jax.data.pipeline import batches
from sg3jax.data.pipeline import global_batch
from sg3jax.data.pipeline import scale_images

__all__ = [
    "ImageDataset",
    "batches",
    "demo_images",
    "global_batch",
    "open_dataset",
]
