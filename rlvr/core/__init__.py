"""Foundation every layer shares: the config-file loader, progress bars, interval maths, the ablation registry, downloads."""
