"""Phantom definitions as data (installed as photonqd.phantom.data; read by photonqd.phantom.mcx)."""
