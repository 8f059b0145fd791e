"""cce_demo: see what Complement Cross Entropy does, compared with cross entropy, on long-tailed CIFAR."""

__version__ = "0.1.0"
