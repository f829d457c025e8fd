"""The 3D shape prior's offline parts (§3.8): ground-truth crops, autoencoder training, codebook."""
