"""Image bytes and staged data: the store driver contract, its drivers, the single-pass write
pipeline and the staging area."""
