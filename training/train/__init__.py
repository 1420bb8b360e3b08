"""Training of SPS-Net and MAED: the loss terms of a batch, checkpoints, and the loop."""
