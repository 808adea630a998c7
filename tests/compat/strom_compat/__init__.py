"""Helpers for Strom's compatibility tests: broker process, wire codec, murmur2, scenario."""
