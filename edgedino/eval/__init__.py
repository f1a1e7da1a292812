"""Frozen-feature evaluation of any backbone or exported artifact: k-NN and linear probe. Torch-free."""
