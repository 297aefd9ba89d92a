"""Uncertainty from per-element Gaussian mixtures on model features."""
