"""Drift tests over several features at once: changes no single feature shows."""

from detectors.multivariate.pca import PCADrift

__all__ = ["PCADrift"]
