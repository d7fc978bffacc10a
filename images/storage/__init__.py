"""Image data: filesystem stores and the streaming writer that hashes and inspects in one pass."""
