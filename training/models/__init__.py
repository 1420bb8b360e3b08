"""Networks of SPS-Net and MAED."""
